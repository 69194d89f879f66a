import { IConnector, ICheck } from './tokens';

/** What can be done to a connector from the panel. */
export type ConnectorAction = 'open' | 'activate' | 'deactivate' | 'test' | 'refresh';

/**
 * The actions that make sense for c in its state, among those the daemon
 * allows this user: never Activate and Deactivate at once, nothing that
 * needs a bucket for a file that does not parse.
 */
export function connectorActions(c: IConnector): ConnectorAction[] {
  const allowed = new Set(c.actions ?? []);
  const parsed = !!c.bucket;
  const out: ConnectorAction[] = [];
  if (c.state === 'mounted' && allowed.has('browse')) {
    out.push('open');
  }
  const deactivate =
    allowed.has('deactivate') &&
    (c.state === 'mounted' || c.state === 'mounting' || (c.state === 'error' && c.active));
  if (deactivate) {
    out.push('deactivate');
  } else if (allowed.has('activate') && parsed && (c.state === 'inactive' || c.state === 'error')) {
    out.push('activate');
  }
  if (allowed.has('test') && parsed) {
    out.push('test');
  }
  if (c.state === 'mounted' && allowed.has('browse')) {
    out.push('refresh');
  }
  return out;
}

/** RO / RW, or null when the file did not say (e.g. it does not parse). */
export function modeBadge(c: IConnector): 'RO' | 'RW' | null {
  return c.mode === 'ro' ? 'RO' : c.mode === 'rw' ? 'RW' : null;
}

/** A check that did not run (an earlier one failed) is not a failure. */
export function checkSkipped(ch: ICheck): boolean {
  return !ch.ok && ((ch as any).skipped === true || !ch.error || /^(skipped|not run)\b/i.test(ch.error));
}
