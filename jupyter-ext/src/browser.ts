/**
 * The browser of a mounted connector: breadcrumbs (the pattern of
 * JupyterLab's file browser), a filter that can search the whole folder, and
 * a virtualized list paged from the daemon's `/files` cursor.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { closeIcon, fileIcon, folderIcon, searchIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { AgentError, IRequester } from './requester';
import { contextMenuOn, el, formatDate, renderCrumbs } from './components';
import { DirectoryListing, formatSize, joinRel } from './listing';
import { browseErrorText, cleanError } from './reason';
import { IConnector, IEntry } from './tokens';

/** Height of one entry row in px (the virtual list relies on it). */
export const ROW_HEIGHT = 24;
const OVERSCAN = 10;

export namespace MountBrowser {
  export interface IOptions {
    requester: IRequester;
    trans: TranslationBundle;
    /** The connector of an id, current (its name and mount path). */
    connector: (id: string) => IConnector | undefined;
    pageSize?: number;
  }
}

export class MountBrowser extends Widget {
  constructor(options: MountBrowser.IOptions) {
    super();
    this._requester = options.requester;
    this._trans = options.trans;
    this._connector = options.connector;
    this.pageSize = options.pageSize ?? 500;
    const trans = this._trans;
    this.addClass('jp-S3Mounts-browser');
    this.node.setAttribute('aria-label', trans.__('Files'));

    const top = el('div', 'jp-S3Mounts-browserTop');
    this._crumbs = el('nav', 'jp-S3Mounts-crumbs');
    this._crumbs.setAttribute('aria-label', trans.__('Path'));
    const close = el('button', 'jp-S3Mounts-iconButton jp-S3Mounts-close');
    close.title = trans.__('Close the browser');
    close.setAttribute('aria-label', trans.__('Close the browser'));
    close.appendChild(closeIcon.element({ tag: 'span' }));
    close.onclick = () => this.close();
    top.append(this._crumbs, close);

    this._filter = el('input', 'jp-S3Mounts-filter jp-mod-styled');
    this._filter.type = 'search';
    this._filter.placeholder = trans.__('Filter by name');
    this._filter.setAttribute('aria-label', trans.__('Filter entries by name'));
    this._filter.addEventListener('input', () => {
      this._listing?.stop();
      this._selected = -1;
      this._scroller.scrollTop = 0;
      this._renderEntries();
    });
    this._filter.addEventListener('keydown', ev => {
      if (ev.key === 'ArrowDown') {
        ev.preventDefault();
        this._scroller.focus();
        this._select(Math.max(0, this._selected));
      } else if (ev.key === 'Enter' && this._listing?.hasMore && this._filter.value.trim()) {
        ev.preventDefault();
        this.searchWholeFolder();
      }
    });

    const head = el('div', 'jp-S3Mounts-columns');
    head.append(
      el('span', 'jp-S3Mounts-colName', trans.__('Name')),
      el('span', 'jp-S3Mounts-colSize', trans.__('Size')),
      el('span', 'jp-S3Mounts-colDate', trans.__('Modified'))
    );
    this._scroller = el('div', 'jp-S3Mounts-list');
    this._scroller.tabIndex = 0;
    this._scroller.setAttribute('role', 'listbox');
    this._scroller.setAttribute('aria-label', trans.__('Entries'));
    this._spacer = el('div', 'jp-S3Mounts-spacer');
    this._message = el('div', 'jp-S3Mounts-listMessage');
    this._message.hidden = true;
    this._scroller.append(this._spacer, this._message);
    this._scroller.addEventListener('scroll', () => this._scheduleRender(), { passive: true });
    this._scroller.addEventListener('keydown', ev => this._onKey(ev));
    this._spacer.addEventListener('click', ev => {
      const i = this._rowIndex(ev.target);
      if (i >= 0) {
        this._select(i);
      }
    });
    this._spacer.addEventListener('dblclick', ev => {
      const i = this._rowIndex(ev.target);
      const e = i >= 0 ? this._visible()[i] : null;
      if (e) {
        this.openEntry(e);
      }
    });
    // Right-click selects the row under the pointer so the context menu's
    // commands act on it (JupyterLab opens the menu itself).
    this._spacer.addEventListener('contextmenu', ev => {
      const i = this._rowIndex(ev.target);
      if (i >= 0) {
        this._select(i, false);
      }
    });

    // Status line: counts, what the filter searched, errors; and the
    // "search the whole folder" / "stop" action.
    const foot = el('div', 'jp-S3Mounts-statusBar');
    this._status = el('div', 'jp-S3Mounts-status');
    this._status.setAttribute('aria-live', 'polite');
    this._searchAll = el('button', 'jp-S3Mounts-searchAll');
    // (an icon element of its own: element({container}) would replace the button's classes)
    this._searchAll.appendChild(searchIcon.element({ tag: 'span', className: 'jp-S3Mounts-searchAllIcon' }));
    this._searchAll.appendChild(el('span', '', trans.__('Search the whole folder')));
    this._searchAll.title = trans.__('Load every page of this folder (through the paged API) and filter them all');
    this._searchAll.hidden = true;
    this._searchAll.onclick = () => (this._listing?.searching ? this._listing.stop() : this.searchWholeFolder());
    foot.append(this._status, this._searchAll);
    this.node.append(top, this._filter, head, this._scroller, foot);
    this.hide();
  }

  pageSize: number;

  /** Emitted when the browser closes (or the connector it shows goes). */
  get closed(): ISignal<this, void> {
    return this._closed;
  }

  /** The connector being browsed. */
  get browsing(): IConnector | null {
    return this._browsing ? (this._connector(this._browsing) ?? null) : null;
  }

  get browsingId(): string | null {
    return this._browsing;
  }

  /** The current directory relative to the mount. */
  get currentDir(): string {
    return this._listing?.dir ?? '';
  }

  /** The entry the context menu acts on (the selected row). */
  get selectedEntry(): IEntry | null {
    if (!this._listing || this._selected < 0) {
      return null;
    }
    return this._visible()[this._selected] ?? null;
  }

  /** Open connector id at dir (relative to its mount). */
  browse(id: string, dir = ''): void {
    const keep = this._browsing === id ? this._filter.value : '';
    this._browsing = id;
    this._listing?.dispose();
    this._listing = new DirectoryListing(this._requester, id, dir, this.pageSize);
    this._listing.changed.connect(this._renderEntries, this);
    this._selected = -1;
    this._filter.value = dir === this._shownDir ? keep : '';
    this._shownDir = dir;
    this._scroller.scrollTop = 0;
    this.show();
    this._renderCrumbs();
    this._renderEntries();
    void this._listing.loadMore();
  }

  /** Reload the current directory from the daemon (keeps the filter). */
  reload(): void {
    if (this._browsing && this._listing) {
      this.browse(this._browsing, this._listing.dir);
    }
  }

  /** Go to the parent folder (Backspace). */
  up(): void {
    const dir = this.currentDir;
    if (dir && this._browsing) {
      this.browse(this._browsing, dir.split('/').slice(0, -1).join('/'));
    }
  }

  close(): void {
    if (!this._browsing) {
      return;
    }
    this._listing?.dispose();
    this._listing = null;
    this._browsing = null;
    this._shownDir = null;
    this.hide();
    this._closed.emit();
  }

  /** Go into a directory entry. */
  openEntry(entry: IEntry): void {
    if (entry.type === 'dir' && this._browsing && this._listing) {
      this.browse(this._browsing, joinRel(this._listing.dir, entry.name));
    }
  }

  /** The entry's path relative to the mount. */
  relPath(entry: IEntry): string {
    return joinRel(this._listing?.dir ?? '', entry.name);
  }

  /** Load every page of the folder (5,000 a request) so the filter sees them all. */
  searchWholeFolder(): void {
    void this._listing?.loadAll(5000);
  }

  /** Put the keyboard focus on the list. */
  focusList(): void {
    this._scroller.focus();
  }

  dispose(): void {
    this._listing?.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    this._renderEntries();
  }

  protected onResize(msg: Message): void {
    this._renderEntries();
  }

  private _renderCrumbs(): void {
    const c = this.browsing;
    if (!c || !this._listing) {
      this._crumbs.textContent = '';
      return;
    }
    renderCrumbs(this._crumbs, c, this._listing.dir, dir => this.browse(c.id, dir));
  }

  /** The entries shown (filtered), cached until a page or the filter changes. */
  private _visible(): readonly IEntry[] {
    if (!this._listing) {
      return [];
    }
    const all = this._listing.entries;
    const filter = this._filter.value;
    if (this._cache && this._cache.all === all && this._cache.filter === filter) {
      return this._cache.shown;
    }
    this._cache = { all, filter, shown: this._listing.filtered(filter) };
    return this._cache.shown;
  }

  private _rowIndex(target: EventTarget | null): number {
    const row = (target as HTMLElement | null)?.closest?.('.jp-S3Mounts-entry') as HTMLElement | null;
    return row ? Number(row.dataset.index) : -1;
  }

  private _scheduleRender(): void {
    if (this._frame) {
      return;
    }
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._renderEntries();
    });
  }

  /** Render only the rows in view (plus a margin): the DOM stays small. */
  private _renderEntries(): void {
    const listing = this._listing;
    if (!listing || this.isHidden) {
      return;
    }
    const entries = this._visible();
    const n = entries.length;
    this._spacer.style.height = `${n * ROW_HEIGHT}px`;
    const view = this._scroller.clientHeight || 400;
    const top = this._scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + view) / ROW_HEIGHT) + OVERSCAN);
    // Rows are reused while the entries are the same: a click or a
    // scroll never replaces the row under the pointer (dblclick works).
    if (this._rowsOf !== entries) {
      this._rowsOf = entries;
      this._rows.forEach(r => r.remove());
      this._rows.clear();
    }
    for (const [i, r] of this._rows) {
      if (i < first || i >= last) {
        r.remove();
        this._rows.delete(i);
      }
    }
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) {
      let r = this._rows.get(i);
      if (!r) {
        r = this._row(entries[i], i);
        this._rows.set(i, r);
        frag.appendChild(r);
      }
      const sel = i === this._selected;
      if (r.classList.contains('jp-mod-selected') !== sel) {
        r.classList.toggle('jp-mod-selected', sel);
        r.setAttribute('aria-selected', String(sel));
      }
    }
    this._spacer.appendChild(frag);

    // Page on: the end of what is loaded is near the end of the view.
    if (listing.hasMore && !listing.loading && !listing.error && last >= n - OVERSCAN * 2) {
      void listing.loadMore();
    }
    this._renderStatus(n);
  }

  private _renderStatus(n: number): void {
    const listing = this._listing!;
    const trans = this._trans;
    const total = listing.entries.length;
    const filtering = !!this._filter.value.trim();
    const busy = listing.loading || listing.searching;
    this.node.classList.toggle('jp-mod-busy', busy);
    this._scroller.setAttribute('aria-busy', String(busy));
    let status: string;
    let message = '';
    const err = listing.error;
    if (err) {
      const name = this.browsing?.name || this._browsing || '';
      status =
        err instanceof AgentError
          ? browseErrorText(err, name)
          : browseErrorText({ message: err.message }, name);
      if (total === 0) {
        message = status;
      }
    } else if (total === 0 && listing.loading) {
      status = trans.__('Loading…');
    } else if (total === 0 && !listing.hasMore) {
      status = trans.__('Empty folder');
      message = status;
    } else if (listing.searching) {
      status = trans.__('Searching the whole folder… %1 entries loaded', total.toLocaleString());
      if (filtering) {
        status += ' · ' + trans._n('%1 match so far', '%1 matches so far', n);
      }
    } else if (filtering) {
      status = listing.hasMore
        ? trans._n(
            '%1 match among the %2 loaded entries only',
            '%1 matches among the %2 loaded entries only',
            n,
            total.toLocaleString()
          )
        : trans._n('%1 match in the whole folder (%2 entries)', '%1 matches in the whole folder (%2 entries)', n, total.toLocaleString());
      if (n === 0 && !listing.hasMore) {
        message = trans.__('Nothing here matches "%1"', this._filter.value.trim());
      }
    } else {
      status = listing.hasMore
        ? trans.__('%1 entries loaded, more on scroll', total.toLocaleString())
        : trans.__('%1 entries', total.toLocaleString());
    }
    if (listing.loading && total > 0 && !listing.searching) {
      status += ' · ' + trans.__('loading…');
    }
    this._status.textContent = status;
    this._status.title = err ? cleanError(err.message) : status;
    this._status.classList.toggle('jp-mod-error', !!err);
    this._message.textContent = message;
    this._message.hidden = !message;
    this._message.classList.toggle('jp-mod-error', !!err);
    // Offered while a filter is typed and pages remain; "Stop" while searching.
    const offer = (filtering && listing.hasMore && !err) || listing.searching;
    this._searchAll.hidden = !offer;
    this._searchAll.style.display = offer ? '' : 'none'; // whatever a theme says of buttons
    this._searchAll.classList.toggle('jp-mod-searching', listing.searching);
    const label = this._searchAll.lastElementChild as HTMLElement;
    label.textContent = listing.searching ? trans.__('Stop') : trans.__('Search the whole folder');
  }

  private _row(e: IEntry, i: number): HTMLElement {
    const row = el('div', 'jp-S3Mounts-entry');
    row.dataset.index = String(i);
    row.dataset.type = e.type;
    row.setAttribute('role', 'option');
    row.setAttribute('aria-selected', String(i === this._selected));
    row.id = `jp-S3Mounts-entry-${i}`;
    if (i === this._selected) {
      row.classList.add('jp-mod-selected');
    }
    row.style.top = `${i * ROW_HEIGHT}px`;
    row.title = e.path;
    const icon = (e.type === 'dir' ? folderIcon : fileIcon).element({ tag: 'span', className: 'jp-S3Mounts-entryIcon' });
    row.appendChild(icon);
    row.appendChild(el('span', 'jp-S3Mounts-entryName', e.name));
    row.appendChild(el('span', 'jp-S3Mounts-entrySize', e.type === 'dir' ? '' : formatSize(e.size)));
    const d = e.mtime ? new Date(e.mtime) : null;
    const date = el('span', 'jp-S3Mounts-entryDate', d && d.getFullYear() > 1970 ? formatDate(d) : '');
    if (d) {
      date.title = d.toLocaleString();
    }
    row.appendChild(date);
    return row;
  }

  private _select(i: number, scroll = true): void {
    const n = this._visible().length;
    if (n === 0) {
      this._selected = -1;
      return;
    }
    this._selected = Math.max(0, Math.min(n - 1, i));
    this._scroller.setAttribute('aria-activedescendant', `jp-S3Mounts-entry-${this._selected}`);
    if (scroll) {
      const y = this._selected * ROW_HEIGHT;
      const s = this._scroller;
      if (y < s.scrollTop) {
        s.scrollTop = y;
      } else if (y + ROW_HEIGHT > s.scrollTop + s.clientHeight) {
        s.scrollTop = y + ROW_HEIGHT - s.clientHeight;
      }
    }
    this._renderEntries();
  }

  private _onKey(ev: KeyboardEvent): void {
    const page = Math.max(1, Math.floor(this._scroller.clientHeight / ROW_HEIGHT) - 1);
    const i = this._selected;
    if (ev.key === 'ContextMenu' || (ev.key === 'F10' && ev.shiftKey)) {
      ev.preventDefault();
      ev.stopPropagation();
      contextMenuOn(this._rows.get(this._selected) ?? null);
      return;
    }
    switch (ev.key) {
      case 'ArrowDown':
        this._select(i + 1);
        break;
      case 'ArrowUp':
        this._select(i - 1);
        break;
      case 'PageDown':
        this._select(i + page);
        break;
      case 'PageUp':
        this._select(i - page);
        break;
      case 'Home':
        this._select(0);
        break;
      case 'End':
        this._select(this._visible().length - 1);
        break;
      case 'Enter': {
        const e = this.selectedEntry;
        if (e) {
          this.openEntry(e);
        }
        break;
      }
      case 'F5':
        this.reload();
        break;
      case 'Backspace':
        this.up();
        break;
      default:
        return;
    }
    ev.preventDefault();
    ev.stopPropagation();
  }

  private _requester: IRequester;
  private _trans: TranslationBundle;
  private _connector: (id: string) => IConnector | undefined;
  private _crumbs: HTMLElement;
  private _filter: HTMLInputElement;
  private _scroller: HTMLDivElement;
  private _spacer: HTMLDivElement;
  private _message: HTMLElement;
  private _status: HTMLElement;
  private _searchAll: HTMLButtonElement;
  private _listing: DirectoryListing | null = null;
  private _cache: { all: readonly IEntry[]; filter: string; shown: readonly IEntry[] } | null = null;
  private _rows = new Map<number, HTMLElement>();
  private _rowsOf: readonly IEntry[] | null = null;
  private _browsing: string | null = null;
  private _shownDir: string | null = null;
  private _selected = -1;
  private _frame = 0;
  private _closed = new Signal<this, void>(this);
}
