import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  checkIcon,
  ellipsesIcon,
  fileIcon,
  folderIcon,
  LabIcon,
  refreshIcon,
  runIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { AgentError, IRequester } from './handler';
import { ConnectorAction, connectorActions, modeBadge } from './actions';
import { el, formatDate, renderTestResult, stateLabel } from './components';
import { DirectoryListing, formatSize, joinRel } from './listing';
import { cleanError, shortReason } from './reason';
import { MountsModel } from './model';
import { AGENT_DOWN, IConnector, IEntry, ITestResult } from './tokens';

/** Height of one entry row in px (the virtual list relies on it). */
export const ROW_HEIGHT = 24;
const OVERSCAN = 10;

export namespace S3MountsPanel {
  export interface IOptions {
    model: MountsModel;
    requester: IRequester;
    trans: TranslationBundle;
    icon: LabIcon;
    pageSize?: number;
  }
}

/**
 * The "S3 Mounts" sidebar: the connectors of this node with their live
 * state and actions, and a browser of a mounted connector whose list is
 * virtualized and paged from the daemon.
 */
export class S3MountsPanel extends Widget {
  constructor(options: S3MountsPanel.IOptions) {
    super();
    this.model = options.model;
    this._requester = options.requester;
    this._trans = options.trans;
    this.pageSize = options.pageSize ?? 500;
    const trans = this._trans;
    this.id = 's3mounts-panel';
    this.addClass('jp-S3Mounts');
    this.title.icon = options.icon;
    this.title.caption = trans.__('S3 Mounts');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('S3 Mounts'));

    const header = el('div', 'jp-S3Mounts-header');
    header.appendChild(el('h2', 'jp-S3Mounts-title', trans.__('S3 Mounts')));
    // A small toolbar acting on the selected connector (also its context menu).
    const tools = el('div', 'jp-S3Mounts-toolbar');
    tools.setAttribute('role', 'toolbar');
    tools.setAttribute('aria-label', trans.__('Connector actions'));
    const tool = (action: ConnectorAction, icon: LabIcon, label: string) => {
      const b = el('button', `jp-S3Mounts-iconButton jp-S3Mounts-tool jp-S3Mounts-${action}`);
      b.title = label;
      b.setAttribute('aria-label', label);
      icon.element({ container: b, tag: 'span' });
      b.hidden = true;
      b.onclick = () => {
        const c = this.selectedConnector;
        if (c) {
          void this.runAction(c.id, action);
        }
      };
      this._tools.set(action, b);
      tools.appendChild(b);
    };
    tool('open', folderIcon, trans.__('Open'));
    tool('activate', runIcon, trans.__('Activate'));
    tool('deactivate', stopIcon, trans.__('Deactivate…'));
    tool('test', checkIcon, trans.__('Test connection'));
    tool('refresh', refreshIcon, trans.__('Refresh (drop cached listings)'));
    this._moreButton = el('button', 'jp-S3Mounts-iconButton jp-S3Mounts-more');
    this._moreButton.title = trans.__('More actions');
    this._moreButton.setAttribute('aria-label', trans.__('More actions'));
    ellipsesIcon.element({ container: this._moreButton, tag: 'span' });
    this._moreButton.hidden = true;
    this._moreButton.onclick = () =>
      this._contextMenuOn(this._list.querySelector('.jp-S3Mounts-connector.jp-mod-selected') as HTMLElement | null);
    tools.appendChild(this._moreButton);
    header.appendChild(tools);
    const refresh = el('button', 'jp-S3Mounts-iconButton jp-S3Mounts-refreshAll');
    refresh.title = trans.__('Reload the list of connectors (F5)');
    refresh.setAttribute('aria-label', trans.__('Reload the list of connectors'));
    refreshIcon.element({ container: refresh, tag: 'span' });
    refresh.onclick = () => void this.model.refresh().catch(() => undefined);
    header.appendChild(refresh);
    this._warning = el('div', 'jp-S3Mounts-warning');
    this._warning.hidden = true;
    this._banner = el('div', 'jp-S3Mounts-banner');
    this._banner.setAttribute('role', 'alert');
    this._banner.hidden = true;
    this._list = el('ul', 'jp-S3Mounts-connectors');
    this._list.setAttribute('aria-label', trans.__('Connectors'));
    this._list.setAttribute('role', 'listbox');
    this._list.tabIndex = 0;
    this._list.addEventListener('click', ev => this._onListEvent(ev));
    this._list.addEventListener('dblclick', ev => this._onListEvent(ev));
    this._list.addEventListener('contextmenu', ev => this._onListEvent(ev));
    this._list.addEventListener('keydown', ev => this._onListKey(ev));

    this._browser = this._buildBrowser();
    this._browser.hidden = true;
    this.node.append(header, this._warning, this._banner, this._list, this._browser);
    this.model.changed.connect(this._onModelChanged, this);
    this._renderConnectors();
  }

  readonly model: MountsModel;
  pageSize: number;

  /** The entry the context menu acts on (the selected row). */
  get selectedEntry(): IEntry | null {
    if (!this._listing || this._selected < 0) {
      return null;
    }
    return this._visible()[this._selected] ?? null;
  }

  /** The connector being browsed. */
  get browsing(): IConnector | null {
    return this._browsing ? (this.model.connector(this._browsing) ?? null) : null;
  }

  /** The current directory relative to the mount. */
  get currentDir(): string {
    return this._listing?.dir ?? '';
  }

  /** Show a warning line (e.g. a version mismatch). */
  setWarning(text: string): void {
    this._warning.textContent = text;
    this._warning.hidden = !text;
  }

  /** Open connector id at dir (relative to its mount). */
  browse(id: string, dir = ''): void {
    this._browsing = id;
    this._listing?.dispose();
    this._listing = new DirectoryListing(this._requester, id, dir, this.pageSize);
    this._listing.changed.connect(this._renderEntries, this);
    this._selected = -1;
    this._filter.value = '';
    this._scroller.scrollTop = 0;
    this._browser.hidden = false;
    this.addClass('jp-mod-browsing');
    this._renderCrumbs();
    this._renderEntries();
    this._renderConnectors();
    void this._listing.loadMore();
  }

  /** Reload the current directory from the daemon. */
  reload(): void {
    if (this._browsing && this._listing) {
      this.browse(this._browsing, this._listing.dir);
    }
  }

  closeBrowser(): void {
    this._listing?.dispose();
    this._listing = null;
    this._browsing = null;
    this._browser.hidden = true;
    this.removeClass('jp-mod-browsing');
    this._renderConnectors();
  }

  /** Go into a directory entry, or report that it is a file. */
  openEntry(entry: IEntry): void {
    if (entry.type === 'dir' && this._browsing && this._listing) {
      this.browse(this._browsing, joinRel(this._listing.dir, entry.name));
    }
  }

  /** The entry's path relative to the mount. */
  relPath(entry: IEntry): string {
    return joinRel(this._listing?.dir ?? '', entry.name);
  }

  dispose(): void {
    this._listing?.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    this.model.setVisible(true);
    this._renderEntries();
  }

  protected onAfterHide(msg: Message): void {
    this.model.setVisible(false);
  }

  protected onResize(msg: Message): void {
    this._renderEntries();
  }

  private _onModelChanged(): void {
    const m = this.model;
    // For tests and styling: whether the event stream is connected.
    this.node.dataset.live = String(m.live);
    this._banner.hidden = m.status === 'ok' || m.status === 'loading';
    this._banner.textContent = '';
    if (m.status === 'down') {
      this._banner.appendChild(el('div', 'jp-S3Mounts-bannerText', this._trans.__(AGENT_DOWN)));
      this._banner.appendChild(
        el('div', 'jp-S3Mounts-bannerNext', this._trans.__('Ask an admin to start s3mountd: systemctl start s3mountd. This panel reconnects by itself.'))
      );
    } else {
      this._banner.appendChild(el('div', 'jp-S3Mounts-bannerText', shortReason(m.message)));
      this._banner.title = cleanError(m.message);
    }
    this._list.classList.toggle('jp-mod-stale', m.status === 'down');
    if (this._browsing) {
      const c = m.connector(this._browsing);
      if (!c || c.state !== 'mounted') {
        this.closeBrowser();
        return;
      }
    }
    this._renderConnectors();
  }

  private _renderConnectors(): void {
    const trans = this._trans;
    const list = this._list;
    list.textContent = '';
    const m = this.model;
    if (m.status === 'ok' && m.connectors.length === 0) {
      list.appendChild(el('li', 'jp-S3Mounts-empty', trans.__('No connectors on this node')));
    }
    if (m.status === 'loading') {
      list.appendChild(el('li', 'jp-S3Mounts-empty', trans.__('Loading…')));
    }
    if (this._picked && !m.connector(this._picked)) {
      this._picked = null;
    }
    for (const c of m.connectors) {
      list.appendChild(this._connectorItem(c));
    }
    this._renderToolbar();
  }

  /** The connector selected in the list (the toolbar and context menu act on it). */
  get selectedConnector(): IConnector | null {
    return this._picked ? (this.model.connector(this._picked) ?? null) : null;
  }

  selectConnector(id: string | null): void {
    this._picked = id;
    this._renderConnectors();
  }

  /** The actions offered for c now (none while it is busy or the agent is down). */
  actionsFor(c: IConnector | null): ConnectorAction[] {
    if (!c) {
      return [];
    }
    return connectorActions(c);
  }

  isBusy(id: string): boolean {
    return this._busy.has(id) || this.model.status === 'down';
  }

  /** Run one action on connector id (Deactivate asks first). */
  async runAction(id: string, action: ConnectorAction): Promise<void> {
    const c = this.model.connector(id);
    if (!c || this.isBusy(id)) {
      return;
    }
    const trans = this._trans;
    switch (action) {
      case 'open':
        this.browse(id);
        return;
      case 'activate':
        return this._run(id, async () => {
          await this.model.activate(id);
        });
      case 'deactivate': {
        const answer = await showDialog({
          title: trans.__('Deactivate %1?', c.name || c.id),
          body: trans.__(
            'This unmounts %1 for every user of this node: open files and running notebooks that read it lose access. Activate it again to mount it.',
            c.mount_path || c.name || c.id
          ),
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: trans.__('Deactivate') })]
        });
        if (!answer.button.accept) {
          return;
        }
        return this._run(id, async () => {
          await this.model.deactivate(id);
        });
      }
      case 'test':
        return this._run(id, async () => {
          this._tests.set(id, 'running');
          this._renderConnectors();
          try {
            this._tests.set(id, await this.model.test(id));
          } catch (e) {
            this._tests.delete(id);
            throw e;
          }
        });
      case 'refresh':
        return this._run(id, async () => {
          await this.model.refreshPath(id, '');
          if (this._browsing === id) {
            this.reload();
          }
        });
    }
  }

  private _renderToolbar(): void {
    const c = this.selectedConnector;
    const offered = new Set(this.actionsFor(c));
    const busy = !c || this.isBusy(c.id);
    for (const [action, b] of this._tools) {
      b.hidden = !offered.has(action);
      b.disabled = busy;
      if (c) {
        b.setAttribute('aria-label', `${b.title} ${c.name || c.id}`);
      }
    }
    this._moreButton.hidden = !c;
  }

  private _connectorItem(c: IConnector): HTMLLIElement {
    const trans = this._trans;
    const li = el('li', 'jp-S3Mounts-connector');
    li.dataset.id = c.id;
    li.dataset.state = c.state;
    li.setAttribute('role', 'option');
    li.tabIndex = -1;
    const picked = this._picked === c.id;
    li.setAttribute('aria-selected', String(picked));
    li.classList.toggle('jp-mod-selected', picked);
    const busy = this._busy.has(c.id);
    li.setAttribute('aria-busy', String(busy));
    if (this._browsing === c.id) {
      li.classList.add('jp-mod-browsing');
    }
    const row = el('div', 'jp-S3Mounts-connectorRow');
    const dot = el('span', `jp-S3Mounts-dot jp-S3Mounts-state-${c.state}${busy ? ' jp-mod-busy' : ''}`);
    const stateText = stateLabel(c.state, this._trans);
    dot.setAttribute('role', 'img');
    dot.setAttribute('aria-label', trans.__('State: %1', stateText));
    const err = this._errors.get(c.id) || c.error;
    const full = cleanError(err);
    dot.title = full ? `${stateText}: ${full}` : stateText;
    row.appendChild(dot);
    const shown = c.name || c.id;
    const name = el('span', 'jp-S3Mounts-name', shown);
    name.title = c.description ? `${shown}\n${c.description}` : shown;
    row.appendChild(name);
    const badge = modeBadge(c);
    if (badge) {
      const b = el('span', `jp-S3Mounts-badge jp-S3Mounts-badge-${badge.toLowerCase()}`, badge);
      b.title = badge === 'RO' ? trans.__('Read-only') : trans.__('Read-write');
      row.appendChild(b);
    }
    li.appendChild(row);

    // Second line: a reason in plain words, else where the data is.
    const sub = el('div', 'jp-S3Mounts-sub');
    if (full) {
      const reason = el('span', 'jp-S3Mounts-reason', shortReason(err));
      reason.title = full;
      sub.appendChild(reason);
    } else if (c.state === 'mounting' || c.state === 'unmounting' || busy) {
      sub.appendChild(el('span', 'jp-S3Mounts-stateText', busy ? trans.__('working…') : stateText + '…'));
    } else if (c.bucket) {
      const where = el('span', 'jp-S3Mounts-bucket', `${c.bucket}${c.prefix ? '/' + c.prefix.replace(/^\/+/, '') : ''}`);
      where.title = [c.endpoint, c.mount_path, c.backend ? trans.__('backend: %1', c.backend) : ''].filter(Boolean).join(' · ');
      sub.appendChild(where);
    }
    if (sub.childNodes.length) {
      li.appendChild(sub);
    }
    if (full && picked) {
      const details = el('details', 'jp-S3Mounts-details');
      details.appendChild(el('summary', '', trans.__('Details')));
      const body = el('div', 'jp-S3Mounts-detailsText', full);
      body.setAttribute('role', 'note');
      details.appendChild(body);
      if (c.updated_at) {
        details.appendChild(el('div', 'jp-S3Mounts-detailsSince', trans.__('Since %1', formatDate(new Date(c.updated_at)))));
      }
      li.appendChild(details);
    }
    const t = this._tests.get(c.id);
    if (t) {
      li.appendChild(renderTestResult(t, this._trans));
    }
    return li;
  }

  private _onListEvent(ev: Event): void {
    const li = (ev.target as HTMLElement | null)?.closest?.('.jp-S3Mounts-connector') as HTMLElement | null;
    const id = li?.dataset.id;
    if (!id) {
      return;
    }
    if ((ev.target as HTMLElement).closest('details')) {
      return; // the details toggle itself
    }
    if (this._picked !== id) {
      this._picked = id;
      this._renderConnectors();
      (this._list.querySelector(`.jp-S3Mounts-connector[data-id="${CSS.escape(id)}"]`) as HTMLElement | null)?.focus();
    }
    if (ev.type === 'dblclick') {
      const c = this.model.connector(id);
      if (c && this.actionsFor(c).includes('open')) {
        this.browse(id);
      }
    }
  }

  private _onListKey(ev: KeyboardEvent): void {
    const ids = this.model.connectors.map(c => c.id);
    if (ids.length === 0) {
      return;
    }
    const i = this._picked ? ids.indexOf(this._picked) : -1;
    let next: number | null = null;
    switch (ev.key) {
      case 'ArrowDown':
        next = Math.min(ids.length - 1, i + 1);
        break;
      case 'ArrowUp':
        next = Math.max(0, i - 1);
        break;
      case 'Home':
        next = 0;
        break;
      case 'End':
        next = ids.length - 1;
        break;
      case 'Enter': {
        const c = this.selectedConnector;
        if (c && this.actionsFor(c).includes('open')) {
          this.browse(c.id);
        }
        break;
      }
      case 'F5':
        void this.model.refresh().catch(() => undefined);
        break;
      case 'ContextMenu':
      case 'F10':
        if (ev.key === 'F10' && !ev.shiftKey) {
          return;
        }
        this._contextMenuOn(this._list.querySelector('.jp-S3Mounts-connector.jp-mod-selected') as HTMLElement | null);
        break;
      default:
        return;
    }
    ev.preventDefault();
    ev.stopPropagation();
    if (next !== null && next >= 0) {
      this._picked = ids[next];
      this._renderConnectors();
      (this._list.querySelector(`.jp-S3Mounts-connector[data-id="${CSS.escape(ids[next])}"]`) as HTMLElement | null)?.focus();
    }
  }

  private async _run(id: string, fn: () => Promise<void>): Promise<void> {
    this._busy.add(id);
    this._errors.delete(id);
    this._renderConnectors();
    try {
      await fn();
    } catch (e) {
      const msg = e instanceof AgentError && e.unavailable ? this._trans.__(AGENT_DOWN) : e instanceof Error ? e.message : String(e);
      this._errors.set(id, msg);
    } finally {
      this._busy.delete(id);
      this._renderConnectors();
    }
  }

  // ---- the browser ----

  private _buildBrowser(): HTMLElement {
    const trans = this._trans;
    const box = el('div', 'jp-S3Mounts-browser');
    box.setAttribute('aria-label', trans.__('Files'));
    const top = el('div', 'jp-S3Mounts-browserTop');
    this._crumbs = el('nav', 'jp-S3Mounts-crumbs');
    this._crumbs.setAttribute('aria-label', trans.__('Path'));
    const close = el('button', 'jp-S3Mounts-iconButton jp-S3Mounts-close', '×');
    close.title = trans.__('Close the browser');
    close.setAttribute('aria-label', trans.__('Close the browser'));
    close.onclick = () => this.closeBrowser();
    top.append(this._crumbs, close);
    this._filter = el('input', 'jp-S3Mounts-filter jp-mod-styled');
    this._filter.type = 'search';
    this._filter.placeholder = trans.__('Filter by name');
    this._filter.setAttribute('aria-label', trans.__('Filter entries by name'));
    this._filter.addEventListener('input', () => {
      this._selected = -1;
      this._scroller.scrollTop = 0;
      this._renderEntries();
    });
    this._filter.addEventListener('keydown', ev => {
      if (ev.key === 'ArrowDown') {
        ev.preventDefault();
        this._scroller.focus();
        this._select(Math.max(0, this._selected));
      }
    });
    const head = el('div', 'jp-S3Mounts-columns');
    head.append(el('span', 'jp-S3Mounts-colName', trans.__('Name')), el('span', 'jp-S3Mounts-colSize', trans.__('Size')), el('span', 'jp-S3Mounts-colDate', trans.__('Modified')));
    this._scroller = el('div', 'jp-S3Mounts-list');
    this._scroller.tabIndex = 0;
    this._scroller.setAttribute('role', 'listbox');
    this._scroller.setAttribute('aria-label', trans.__('Entries'));
    this._spacer = el('div', 'jp-S3Mounts-spacer');
    this._scroller.appendChild(this._spacer);
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
    this._status = el('div', 'jp-S3Mounts-status');
    this._status.setAttribute('aria-live', 'polite');
    box.append(top, this._filter, head, this._scroller, this._status);
    return box;
  }

  private _renderCrumbs(): void {
    const c = this.browsing;
    const nav = this._crumbs;
    nav.textContent = '';
    if (!c || !this._listing) {
      return;
    }
    const parts = this._listing.dir ? this._listing.dir.split('/') : [];
    const root = el('button', 'jp-S3Mounts-crumb', c.name || c.id);
    root.title = c.mount_path;
    root.onclick = () => this.browse(c.id, '');
    nav.appendChild(root);
    parts.forEach((p, i) => {
      nav.appendChild(el('span', 'jp-S3Mounts-crumbSep', '/'));
      const b = el('button', 'jp-S3Mounts-crumb', p);
      const target = parts.slice(0, i + 1).join('/');
      b.onclick = () => this.browse(c.id, target);
      if (i === parts.length - 1) {
        b.setAttribute('aria-current', 'page');
      }
      nav.appendChild(b);
    });
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
    const trans = this._trans;
    if (!listing || this._browser.hidden) {
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
    const total = listing.entries.length;
    let status: string;
    if (listing.error) {
      status =
        listing.error instanceof AgentError && listing.error.unavailable
          ? trans.__(AGENT_DOWN)
          : shortReason(listing.error.message);
    } else if (total === 0 && listing.loading) {
      status = trans.__('Loading…');
    } else if (total === 0 && !listing.hasMore) {
      status = trans.__('Empty folder');
    } else {
      status = listing.hasMore ? trans.__('%1 entries loaded, more on scroll', total.toLocaleString()) : trans.__('%1 entries', total.toLocaleString());
      if (this._filter.value.trim()) {
        status +=
          ' · ' +
          (listing.hasMore
            ? trans._n('%1 match among the loaded entries (scroll to load more)', '%1 matches among the loaded entries (scroll to load more)', n)
            : trans._n('%1 match', '%1 matches', n));
      }
    }
    this._status.textContent = status;
    this._status.title = listing.error ? cleanError(listing.error.message) : '';
    this._status.classList.toggle('jp-mod-error', !!listing.error);
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

  /** Open JupyterLab's context menu on the selected row (keyboard users). */
  private _contextMenuOnSelected(): void {
    this._contextMenuOn(this._rows.get(this._selected) ?? null);
  }

  private _contextMenuOn(row: HTMLElement | null): void {
    if (!row) {
      return;
    }
    const r = row.getBoundingClientRect();
    row.dispatchEvent(
      new MouseEvent('contextmenu', {
        bubbles: true,
        cancelable: true,
        clientX: r.left + 24,
        clientY: r.bottom
      })
    );
  }

  private _onKey(ev: KeyboardEvent): void {
    const page = Math.max(1, Math.floor(this._scroller.clientHeight / ROW_HEIGHT) - 1);
    const i = this._selected;
    if (ev.key === 'ContextMenu' || (ev.key === 'F10' && ev.shiftKey)) {
      ev.preventDefault();
      ev.stopPropagation();
      this._contextMenuOnSelected();
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
      case 'Backspace': {
        const dir = this.currentDir;
        if (dir && this._browsing) {
          this.browse(this._browsing, dir.split('/').slice(0, -1).join('/'));
        }
        break;
      }
      default:
        return;
    }
    ev.preventDefault();
    ev.stopPropagation();
  }

  private _requester: IRequester;
  private _trans: TranslationBundle;
  private _warning: HTMLElement;
  private _banner: HTMLElement;
  private _list: HTMLUListElement;
  private _browser: HTMLElement;
  private _crumbs!: HTMLElement;
  private _filter!: HTMLInputElement;
  private _scroller!: HTMLDivElement;
  private _spacer!: HTMLDivElement;
  private _status!: HTMLElement;
  private _listing: DirectoryListing | null = null;
  private _cache: { all: readonly IEntry[]; filter: string; shown: readonly IEntry[] } | null = null;
  private _rows = new Map<number, HTMLElement>();
  private _rowsOf: readonly IEntry[] | null = null;
  private _browsing: string | null = null;
  private _selected = -1;
  private _frame = 0;
  private _busy = new Set<string>();
  private _picked: string | null = null;
  private _tools = new Map<ConnectorAction, HTMLButtonElement>();
  private _moreButton!: HTMLButtonElement;
  private _errors = new Map<string, string>();
  private _tests = new Map<string, ITestResult | 'running'>();
}
