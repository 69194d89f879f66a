import { describe, expect, it } from 'vitest';

import { DirectoryListing, formatSize, joinRel } from '../listing';
import { IEntry } from '../tokens';
import { entry, FakeRequester } from './fakes';

/** A daemon folder of n entries (every 10th a dir), paged by cursor. */
function pagedFolder(req: FakeRequester, n: number) {
  const all: IEntry[] = [];
  for (let i = 0; i < n; i++) {
    all.push(entry(`e${String(i).padStart(6, '0')}`, i % 10 === 0 ? 'dir' : 'file'));
  }
  req.routes.push(p => {
    const m = /^api\/v1\/connectors\/c\/files\?(.*)$/.exec(p);
    if (!m) {
      return undefined;
    }
    const q = new URLSearchParams(m[1]);
    const start = Number(q.get('cursor') || 0);
    const limit = Number(q.get('limit'));
    const end = Math.min(n, start + limit);
    return { path: q.get('path'), entries: all.slice(start, end), next_cursor: end < n ? String(end) : '' };
  });
  return all;
}

describe('DirectoryListing', () => {
  it('pages with the cursor, one request at a time, never the whole folder', async () => {
    const req = new FakeRequester();
    pagedFolder(req, 2500);
    const l = new DirectoryListing(req, 'c', 'big/dir', 1000);
    const p1 = l.loadMore();
    const p1b = l.loadMore(); // same request while one is pending
    expect(p1b).toBe(p1);
    await p1;
    expect(req.calls.length).toBe(1);
    expect(req.calls[0].path).toBe('api/v1/connectors/c/files?path=big%2Fdir&limit=1000');
    expect(l.entries.length).toBe(1000);
    expect(l.hasMore).toBe(true);
    await l.loadMore();
    expect(req.calls[1].path).toContain('cursor=1000');
    await l.loadMore();
    expect(l.entries.length).toBe(2500);
    expect(l.hasMore).toBe(false);
    expect(l.pagesLoaded).toBe(3);
    await l.loadMore(); // all loaded: no request
    expect(req.calls.length).toBe(3);
  });

  it('keeps folders first, each group in the daemon order', async () => {
    const req = new FakeRequester();
    pagedFolder(req, 30);
    const l = new DirectoryListing(req, 'c', '', 7);
    while (l.hasMore) {
      await l.loadMore();
    }
    const names = l.entries.map(e => e.name);
    expect(names.slice(0, 3)).toEqual(['e000000', 'e000010', 'e000020']);
    expect(l.entries.slice(0, 3).every(e => e.type === 'dir')).toBe(true);
    expect(l.entries.slice(3).every(e => e.type === 'file')).toBe(true);
    expect(names.slice(3, 5)).toEqual(['e000001', 'e000002']);
  });

  it('filters loaded entries by name, case-insensitively', async () => {
    const req = new FakeRequester();
    pagedFolder(req, 100);
    const l = new DirectoryListing(req, 'c', '', 100);
    await l.loadMore();
    expect(l.filtered('E00004').map(e => e.name)).toEqual(
      Array.from({ length: 10 }, (_, i) => `e00004${i}`)
    );
    expect(l.filtered('  ').length).toBe(100);
  });

  it('keeps an error and lets a retry go on from the same cursor', async () => {
    const req = new FakeRequester();
    pagedFolder(req, 20);
    const l = new DirectoryListing(req, 'c', '', 10);
    await l.loadMore();
    req.down = true;
    await l.loadMore();
    expect(l.error?.message).toMatch(/not running/);
    expect(l.entries.length).toBe(10);
    req.down = false;
    await l.loadMore();
    expect(l.error).toBeNull();
    expect(l.entries.length).toBe(20);
  });

  it('searches the whole folder through the cursor, in big pages, and can stop', async () => {
    const req = new FakeRequester();
    pagedFolder(req, 12000);
    const l = new DirectoryListing(req, 'c', '', 500);
    await l.loadMore();
    expect(l.filtered('e01199').length).toBe(0); // not loaded yet
    const seen: boolean[] = [];
    l.changed.connect(() => seen.push(l.searching));
    await l.loadAll(5000);
    expect(l.hasMore).toBe(false);
    expect(l.searching).toBe(false);
    expect(seen).toContain(true);
    expect(l.entries.length).toBe(12000);
    expect(l.filtered('e01199').map(e => e.name)).toEqual(['e011990', 'e011991', 'e011992', 'e011993', 'e011994', 'e011995', 'e011996', 'e011997', 'e011998', 'e011999']);
    // 1 page of 500, then 5000 + 5000 + 1500: every request goes on from the cursor.
    expect(req.calls.map(c => new URLSearchParams(c.path.split('?')[1]).get('limit'))).toEqual(['500', '5000', '5000', '5000']);
    expect(req.calls.map(c => new URLSearchParams(c.path.split('?')[1]).get('cursor'))).toEqual([null, '500', '5500', '10500']);

    const l2 = new DirectoryListing(req, 'c', '', 500);
    l2.changed.connect(() => {
      if (l2.pagesLoaded === 2) {
        l2.stop();
      }
    });
    await l2.loadAll(1000);
    expect(l2.pagesLoaded).toBe(2);
    expect(l2.hasMore).toBe(true);

    const l3 = new DirectoryListing(req, 'c', '', 500);
    await l3.loadMore();
    req.down = true;
    await l3.loadAll(); // an error ends the search, kept for the status line
    expect(l3.error?.message).toMatch(/not running/);
    expect(l3.searching).toBe(false);
  });

  it('helpers', () => {
    expect(joinRel('', 'a')).toBe('a');
    expect(joinRel('a/b', 'c')).toBe('a/b/c');
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(1536)).toBe('1.5 KB');
    expect(formatSize(50 * 1024 * 1024)).toBe('50 MB');
  });
});
