import { describe, expect, it } from 'vitest';

import { cleanError, shortReason } from '../reason';

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
