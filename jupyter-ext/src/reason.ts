/**
 * Plain words for the panel: the daemon's `error` is already human, but the
 * panel never shows raw SDK or tool text even if some gets through.
 */

/** Fragments of AWS SDK / HTTP / tool output that never reach the panel. */
const NOISE: RegExp[] = [
  /,?\s*RequestID:\s*[^,\s)]*/gi,
  /,?\s*HostID:\s*[^,\s)]*/gi,
  /,?\s*api error \w+:\s*/gi,
  /operation error [\w ]+:\s*\w+,\s*/gi,
  /https? response error StatusCode:\s*\d+,?\s*/gi,
  /<\?xml[\s\S]*$/gi,
  /<[A-Za-z][^>]*>[\s\S]*?<\/[A-Za-z]+>/g
];

/** text without SDK noise (RequestID, HostID, XML bodies), whitespace collapsed. */
export function cleanError(text: string): string {
  let s = text ?? '';
  for (const re of NOISE) {
    s = s.replace(re, ' ');
  }
  return s.replace(/\s+/g, ' ').replace(/\s+([,.;:])/g, '$1').replace(/^[\s,;:]+|[\s,;:]+$/g, '').trim();
}

/** The first sentence of a cleaned error, at most max characters: one line for a row. */
export function shortReason(text: string, max = 140): string {
  // The row already names the connector: its file's path is in the details.
  const s = cleanError(text).replace(/^\/[^\s:]+\.toml:\s*/, '');
  if (!s) {
    return '';
  }
  // A sentence ends at ". " / "; " / ": " followed by a capital, or a line break.
  const m = /^(.+?[.;!?])(\s+|$)/.exec(s);
  let first = m ? m[1] : s;
  if (first.length > max) {
    const cut = first.lastIndexOf(' ', max - 1);
    first = first.slice(0, cut > max / 2 ? cut : max - 1) + '…';
  }
  return first;
}

/** Go duration text ("4s", "1m0s", "500ms") in ms, or null. */
function goDuration(s: string): number | null {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let ms = 0;
  let any = false;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    any = true;
    const v = Number(m[1]);
    ms += m[2] === 'h' ? v * 3600e3 : m[2] === 'm' ? v * 60e3 : m[2] === 's' ? v * 1e3 : v;
  }
  return any ? ms : null;
}

/**
 * When the daemon tries again: its error ends "(retrying in 4s)", counted
 * from the connector's updated_at. null when the error does not say.
 */
export function retryAt(error: string, updatedAt: string | null | undefined): Date | null {
  const m = /retrying in ([\d.hms]+)/i.exec(error ?? '');
  if (!m || !updatedAt) {
    return null;
  }
  const since = Date.parse(updatedAt);
  const ms = goDuration(m[1]);
  if (!Number.isFinite(since) || ms === null) {
    return null;
  }
  return new Date(since + ms);
}

/** The daemon's or the server extension's error, as the answer to a browse. */
export interface IErrorLike {
  status?: number;
  code?: string;
  message: string;
}

/**
 * One line in plain words for a failed browse of connector `name`, with what
 * to do: forbidden (403) names the missing right, unavailable the agent.
 */
export function browseErrorText(e: IErrorLike, name: string): string {
  if (e.status === 403 || e.code === 'forbidden') {
    return `You may not browse ${name} (forbidden): ask an admin to allow you "browse" in its access policy.`;
  }
  if (e.status === 404 || e.code === 'not_found') {
    return `This folder is not there any more (not found): go up or refresh.`;
  }
  if (e.code === 'unavailable' || e.status === 0 || e.status === 503) {
    return 'The s3mounts agent is not running on this node: ask an admin to start s3mountd.';
  }
  return shortReason(e.message) || `Listing failed (${e.status ?? '?'}).`;
}

/** When the panel saw a connector's error start, and its text last change. */
export interface IErrorTimes {
  /** First seen with an error (its start, when watched: see sawStart). */
  since: Date;
  /** The panel saw it go from no error to an error (else: it had one when first seen). */
  sawStart: boolean;
  /** The error's text last changed (the daemon's "retrying in" counts from here). */
  changed: Date;
}

/**
 * The API has no "in this state since": the connector's updated_at is its
 * file's own metadata. So the panel keeps the times itself, from what it sees.
 */
export class ErrorClock {
  constructor(private _now: () => number = () => Date.now()) {}

  /** Note connector id's current error; the times of it, or null without one. */
  note(id: string, error: string): IErrorTimes | null {
    const now = this._now();
    const known = this._known.has(id);
    this._known.add(id);
    if (!error) {
      this._times.delete(id);
      return null;
    }
    const t = this._times.get(id);
    if (!t) {
      const fresh = { text: error, since: now, changed: now, sawStart: known };
      this._times.set(id, fresh);
      return Private.out(fresh);
    }
    if (t.text !== error) {
      t.text = error;
      t.changed = now;
    }
    return Private.out(t);
  }

  private _known = new Set<string>();
  private _times = new Map<string, { text: string; since: number; changed: number; sawStart: boolean }>();
}

namespace Private {
  export function out(t: { since: number; changed: number; sawStart: boolean }): IErrorTimes {
    return { since: new Date(t.since), changed: new Date(t.changed), sawStart: t.sawStart };
  }
}
