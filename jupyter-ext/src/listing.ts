import { ISignal, Signal } from '@lumino/signaling';

import { IRequester } from './requester';
import { IEntry, IFiles } from './tokens';

/**
 * One directory of a mounted connector, loaded page by page through the
 * daemon's `/files` cursor: nothing fetches a whole folder. Loaded entries
 * are kept folders first, each group in the daemon's (S3 key) order.
 */
export class DirectoryListing {
  constructor(
    private _requester: IRequester,
    readonly connectorId: string,
    /** Directory relative to the mount: "" is the mount's root. */
    readonly dir: string,
    readonly pageSize = 500
  ) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Loaded entries, folders first. */
  get entries(): readonly IEntry[] {
    if (this._merged === null) {
      this._merged = this._dirs.concat(this._files);
    }
    return this._merged;
  }

  get hasMore(): boolean {
    return !this._done;
  }

  get loading(): boolean {
    return this._pending !== null;
  }

  get pagesLoaded(): number {
    return this._pages;
  }

  get error(): Error | null {
    return this._error;
  }

  /** Entries whose name contains filter (case-insensitive). */
  filtered(filter: string): readonly IEntry[] {
    const f = filter.trim().toLowerCase();
    if (!f) {
      return this.entries;
    }
    return this.entries.filter(e => e.name.toLowerCase().includes(f));
  }

  /** Whether a whole-folder search (loadAll) is running. */
  get searching(): boolean {
    return this._searching;
  }

  /**
   * Load every remaining page through the same cursor (for "search the whole
   * folder"), limit entries a request (the daemon caps it at 5,000). Stops
   * early after stop(), an error or dispose; resolves when done.
   */
  async loadAll(limit = 5000): Promise<void> {
    if (this._searching) {
      return;
    }
    this._searching = true;
    this._stopped = false;
    this._changed.emit();
    try {
      while (!this._done && !this._disposed && !this._stopped) {
        await this.loadMore(limit);
        if (this._error) {
          break;
        }
      }
    } finally {
      this._searching = false;
      if (!this._disposed) {
        this._changed.emit();
      }
    }
  }

  /** Stop a whole-folder search after the page on its way. */
  stop(): void {
    this._stopped = true;
  }

  /** Load the next page (one request at a time; no-op when all is loaded). */
  loadMore(limit = this.pageSize): Promise<void> {
    if (this._done || this._disposed) {
      return Promise.resolve();
    }
    if (this._pending) {
      return this._pending;
    }
    const q = new URLSearchParams({ path: this.dir, limit: String(limit) });
    if (this._cursor) {
      q.set('cursor', this._cursor);
    }
    const url = `api/v1/connectors/${encodeURIComponent(this.connectorId)}/files?${q}`;
    this._pending = this._requester
      .request<IFiles>(url)
      .then(page => {
        if (this._disposed) {
          return;
        }
        for (const e of page.entries ?? []) {
          (e.type === 'dir' ? this._dirs : this._files).push(e);
        }
        this._merged = null;
        this._pages++;
        this._cursor = page.next_cursor ?? '';
        this._done = !this._cursor;
        this._error = null;
      })
      .catch(error => {
        this._error = error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        this._pending = null;
        if (!this._disposed) {
          this._changed.emit();
        }
      });
    this._changed.emit();
    return this._pending;
  }

  dispose(): void {
    this._disposed = true;
    Signal.clearData(this);
  }

  private _dirs: IEntry[] = [];
  private _files: IEntry[] = [];
  private _merged: IEntry[] | null = null;
  private _cursor = '';
  private _done = false;
  private _pages = 0;
  private _pending: Promise<void> | null = null;
  private _error: Error | null = null;
  private _disposed = false;
  private _searching = false;
  private _stopped = false;
  private _changed = new Signal<this, void>(this);
}

/** Join a relative directory and a name. */
export function joinRel(dir: string, name: string): string {
  return dir ? `${dir.replace(/\/+$/, '')}/${name}` : name;
}

/** Human size: 1.2 KB, 3.4 MB (powers of 1024). */
export function formatSize(n: number): string {
  if (!Number.isFinite(n) || n < 0) {
    return '';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
