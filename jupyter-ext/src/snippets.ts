import { IEntry } from './tokens';

/** Kinds of code snippet, chosen by the file's extension. */
export type SnippetKind = 'csv' | 'parquet' | 'json' | 'jsonl' | 'arrow' | 'image' | 'dir' | 'default';

/**
 * Default templates. Placeholders are replaced by Python string literals:
 * {path} (the file's path on the node), {s3_uri}, {name}.
 */
export const DEFAULT_SNIPPETS: Record<SnippetKind, string> = {
  csv: 'import pandas as pd\n\ndf = pd.read_csv({path})\ndf.head()',
  parquet: 'import pandas as pd\n\ndf = pd.read_parquet({path})\ndf.head()',
  json: 'import pandas as pd\n\ndf = pd.read_json({path})\ndf.head()',
  jsonl: 'import pandas as pd\n\ndf = pd.read_json({path}, lines=True)\ndf.head()',
  arrow: 'import pyarrow.feather as feather\n\ntable = feather.read_table({path})\ntable',
  image: 'from PIL import Image\n\nimg = Image.open({path})\nimg',
  dir: 'import os\n\nsorted(os.listdir({path}))[:100]',
  default: 'with open({path}, "rb") as f:\n    data = f.read()\nlen(data)'
};

const EXTENSIONS: Record<string, SnippetKind> = {
  csv: 'csv',
  tsv: 'csv',
  parquet: 'parquet',
  pq: 'parquet',
  json: 'json',
  jsonl: 'jsonl',
  ndjson: 'jsonl',
  arrow: 'arrow',
  feather: 'arrow',
  ipc: 'arrow',
  png: 'image',
  jpg: 'image',
  jpeg: 'image',
  gif: 'image',
  bmp: 'image',
  tif: 'image',
  tiff: 'image',
  webp: 'image'
};

export function snippetKind(entry: Pick<IEntry, 'name' | 'type'>): SnippetKind {
  if (entry.type === 'dir') {
    return 'dir';
  }
  const dot = entry.name.lastIndexOf('.');
  const ext = dot >= 0 ? entry.name.slice(dot + 1).toLowerCase() : '';
  return EXTENSIONS[ext] ?? 'default';
}

/** A Python string literal for s (always valid, whatever s holds). */
export function pyString(s: string): string {
  let out = "'";
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') {
      out += '\\\\';
    } else if (ch === "'") {
      out += "\\'";
    } else if (ch === '\n') {
      out += '\\n';
    } else if (ch === '\r') {
      out += '\\r';
    } else if (ch === '\t') {
      out += '\\t';
    } else if (code < 0x20 || code === 0x7f) {
      out += '\\x' + code.toString(16).padStart(2, '0');
    } else {
      out += ch;
    }
  }
  return out + "'";
}

/** The snippet for entry, from templates (user settings) over the defaults. */
export function renderSnippet(
  entry: IEntry,
  templates: Partial<Record<string, string>> = {}
): string {
  const kind = snippetKind(entry);
  const tpl = templates[kind] ?? DEFAULT_SNIPPETS[kind];
  const values: Record<string, string> = {
    path: pyString(entry.path),
    s3_uri: pyString(entry.s3_uri),
    name: pyString(entry.name)
  };
  return tpl.replace(/\{(path|s3_uri|name)\}/g, (_, k: string) => values[k]);
}
