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
