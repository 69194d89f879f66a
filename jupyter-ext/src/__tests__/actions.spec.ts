import { describe, expect, it } from 'vitest';

import { checkSkipped, connectorActions, modeBadge } from '../actions';
import { connector } from './fakes';

const all = ['view', 'browse', 'test', 'activate', 'deactivate'] as any;

describe('connectorActions', () => {
  it('offers Activate or Deactivate, never both', () => {
    expect(connectorActions(connector('a', { state: 'inactive', actions: all }))).toEqual(['activate', 'test']);
    expect(connectorActions(connector('a', { state: 'mounted', active: true, actions: all }))).toEqual([
      'open',
      'deactivate',
      'test',
      'refresh'
    ]);
    expect(connectorActions(connector('a', { state: 'error', active: true, actions: all }))).toEqual(['deactivate', 'test']);
    expect(connectorActions(connector('a', { state: 'error', active: false, actions: all }))).toEqual(['activate', 'test']);
  });

  it('offers nothing needing a bucket for a file that does not parse', () => {
    expect(connectorActions(connector('a', { state: 'error', bucket: '', active: false, actions: all }))).toEqual([]);
  });

  it('offers only what the daemon allows', () => {
    expect(connectorActions(connector('a', { state: 'mounted', actions: ['view', 'browse'] }))).toEqual(['open', 'refresh']);
  });
});

describe('modeBadge and checkSkipped', () => {
  it('shows no badge the file does not have', () => {
    expect(modeBadge(connector('a', { mode: '' }))).toBeNull();
    expect(modeBadge(connector('a', { mode: 'rw' }))).toBe('RW');
  });
  it('tells skipped checks from failures', () => {
    expect(checkSkipped({ name: 'list', ok: false, ms: 0 })).toBe(true);
    expect(checkSkipped({ name: 'list', ok: false, error: 'Access denied.', ms: 3 })).toBe(false);
    expect(checkSkipped({ name: 'list', ok: true, ms: 3 })).toBe(false);
  });
});
