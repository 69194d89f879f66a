import { describe, expect, it } from 'vitest';

import { browseErrorText, cleanError, ErrorClock, retryAt, shortReason } from '../reason';

describe('shortReason', () => {
  it('keeps the first sentence of a plain error', () => {
    expect(shortReason('The secret key is wrong. Fix secret_name in the connector file and activate again.')).toBe(
      'The secret key is wrong.'
    );
  });

  it('strips RequestID, HostID and SDK prefixes defensively', () => {
    const raw =
      'operation error S3: ListObjectsV2, https response error StatusCode: 403, RequestID: 1873A2B, HostID: dd9025bab4ad, api error SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided.';
    const r = shortReason(raw);
    expect(r).not.toMatch(/RequestID|HostID|StatusCode|operation error/);
    expect(r).toBe('The request signature we calculated does not match the signature you provided.');
  });

  it('drops XML bodies and collapses whitespace', () => {
    const c = cleanError('mount failed:\n  <?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>');
    expect(c).toBe('mount failed');
  });

  it('cuts a long sentence at a word with an ellipsis', () => {
    const r = shortReason('word '.repeat(100), 40);
    expect(r.length).toBeLessThanOrEqual(40);
    expect(r.endsWith('…')).toBe(true);
  });

  it('leaves the connector file path to the details', () => {
    expect(shortReason('/etc/s3mounts/connectors.d/broken.toml: bucket: is required.')).toBe('bucket: is required.');
  });

  it('is empty for nothing', () => {
    expect(shortReason('')).toBe('');
  });
});

describe('retryAt', () => {
  it('counts the daemon\'s "retrying in" from updated_at', () => {
    const at = retryAt('mount failed: the endpoint refuses the key (retrying in 4s)', '2026-12-01T10:00:00Z');
    expect(at?.toISOString()).toBe('2026-12-01T10:00:04.000Z');
    expect(retryAt('x (retrying in 1m0s)', '2026-12-01T10:00:00Z')?.toISOString()).toBe('2026-12-01T10:01:00.000Z');
    expect(retryAt('x (retrying in 500ms)', '2026-12-01T10:00:00Z')?.toISOString()).toBe('2026-12-01T10:00:00.500Z');
  });
  it('is null when the error does not say or the time is unknown', () => {
    expect(retryAt('bucket: is required.', '2026-12-01T10:00:00Z')).toBeNull();
    expect(retryAt('x (retrying in 4s)', null)).toBeNull();
  });
});

describe('browseErrorText', () => {
  it('says forbidden in plain words, with what to do', () => {
    const t = browseErrorText({ status: 403, code: 'forbidden', message: 'forbidden: browse on "data"' }, 'Test data');
    expect(t).toMatch(/^You may not browse Test data \(forbidden\)/);
    expect(t).toMatch(/ask an admin/);
  });
  it('names the agent when it is down', () => {
    expect(browseErrorText({ status: 503, code: 'unavailable', message: 'x' }, 'd')).toMatch(/agent is not running/);
  });
  it('never shows SDK text', () => {
    const t = browseErrorText(
      { status: 502, code: 'internal', message: 'operation error S3: ListObjectsV2, https response error StatusCode: 403, RequestID: ABC, HostID: xyz, api error AccessDenied: Access Denied.' },
      'd'
    );
    expect(t).not.toMatch(/RequestID|HostID|StatusCode|operation error/);
    expect(t).toMatch(/Access Denied/);
  });
});

describe('ErrorClock', () => {
  it('keeps since when an error lasts and when its text last changed', () => {
    let now = 1000;
    const clock = new ErrorClock(() => now);
    expect(clock.note('a', '')).toBeNull(); // seen without an error
    expect(clock.note('b', 'broken')?.sawStart).toBe(false); // had one when first seen
    now = 2000;
    const t1 = clock.note('a', 'refused (retrying in 1s)')!;
    expect(t1.sawStart).toBe(true);
    expect(t1.since.getTime()).toBe(2000);
    now = 3000;
    const t2 = clock.note('a', 'refused (retrying in 2s)')!;
    expect(t2.since.getTime()).toBe(2000);
    expect(t2.changed.getTime()).toBe(3000);
    expect(retryAt('refused (retrying in 2s)', t2.changed.toISOString())?.getTime()).toBe(5000);
    now = 4000;
    expect(clock.note('a', 'refused (retrying in 2s)')!.changed.getTime()).toBe(3000); // same text
    expect(clock.note('a', '')).toBeNull();
    now = 5000;
    expect(clock.note('a', 'again')!.since.getTime()).toBe(5000);
  });
});
