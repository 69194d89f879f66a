import { describe, expect, it } from 'vitest';

import { DEFAULT_SNIPPETS, pyString, renderSnippet, snippetKind } from '../snippets';
import { entry } from './fakes';

describe('snippets', () => {
  it('chooses the kind by extension', () => {
    const cases: [string, string][] = [
      ['a.csv', 'csv'],
      ['A.TSV', 'csv'],
      ['t.parquet', 'parquet'],
      ['x.json', 'json'],
      ['x.jsonl', 'jsonl'],
      ['x.feather', 'arrow'],
      ['p.PNG', 'image'],
      ['p.jpeg', 'image'],
      ['notes', 'default'],
      ['archive.tar.gz', 'default']
    ];
    for (const [name, kind] of cases) {
      expect(snippetKind({ name, type: 'file' })).toBe(kind);
    }
    expect(snippetKind({ name: 'x.csv', type: 'dir' })).toBe('dir');
  });

  it('renders the default templates with Python literals', () => {
    const e = entry('iris.csv', 'file', '/home/jupyter/mnt/s3/data/tables');
    expect(renderSnippet(e)).toBe(
      "import pandas as pd\n\ndf = pd.read_csv('/home/jupyter/mnt/s3/data/tables/iris.csv')\ndf.head()"
    );
    expect(renderSnippet(entry('cat.png'))).toContain("Image.open('/mnt/c/cat.png')");
    expect(renderSnippet(entry('blob.bin'))).toContain("with open('/mnt/c/blob.bin', \"rb\")");
    expect(renderSnippet(entry('t.parquet'))).toContain('pd.read_parquet(');
  });

  it('uses templates from the settings over the defaults', () => {
    const e = entry('t.parquet');
    const out = renderSnippet(e, { parquet: 'import pyarrow.parquet as pq\nt = pq.read_table({path})  # {s3_uri} {name}' });
    expect(out).toBe("import pyarrow.parquet as pq\nt = pq.read_table('/mnt/c/t.parquet')  # 's3://b/t.parquet' 't.parquet'");
    // Other kinds keep their defaults.
    expect(renderSnippet(entry('a.csv'), { parquet: 'x' })).toContain('read_csv');
  });

  it('quotes any path safely', () => {
    expect(pyString("it's")).toBe("'it\\'s'");
    expect(pyString('a\\b')).toBe("'a\\\\b'");
    expect(pyString('new\nline\ttab\x01')).toBe("'new\\nline\\ttab\\x01'");
    expect(pyString('café ✓')).toBe("'café ✓'");
    // A template placeholder inside a path is not expanded again.
    expect(renderSnippet(entry('{name}.csv'))).toContain("read_csv('/mnt/c/{name}.csv')");
  });

  it('defaults match the settings schema', async () => {
    const fs = await import('fs');
    const schema = JSON.parse(fs.readFileSync(new URL('../../schema/plugin.json', import.meta.url), 'utf8'));
    expect(schema.properties.snippets.default).toEqual(DEFAULT_SNIPPETS);
  });
});
