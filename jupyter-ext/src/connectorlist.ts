/**
 * The connector list: one compact row per connector (state dot, the full
 * name wrapping to two lines, RO/RW, a second line with the bucket or a
 * one-line reason), selection and keyboard. Actions are the panel's.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ConnectorAction, connectorActions, modeBadge } from './actions';
import { contextMenuOn, el, renderTestResult, stateLabel } from './components';
import { MountsModel } from './model';
import { cleanError, ErrorClock, IErrorTimes, retryAt, shortReason } from './reason';
import { IConnector, ITestResult } from './tokens';

/** mounted with an error: the mount is there, but requests fail. */
export function isDegraded(c: IConnector): boolean {
  return c.state === 'mounted' && !!c.error;
}

export class ConnectorList extends Widget {
  constructor(options: { model: MountsModel; trans: TranslationBundle }) {
    super({ node: document.createElement('ul') });
    this.model = options.model;
    this._trans = options.trans;
    const trans = this._trans;
    this.addClass('jp-S3Mounts-connectors');
    this.node.setAttribute('aria-label', trans.__('Connectors'));
    this.node.setAttribute('role', 'listbox');
    this.node.tabIndex = 0;
    this.node.addEventListener('click', ev => this._onEvent(ev));
    this.node.addEventListener('dblclick', ev => this._onEvent(ev));
    this.node.addEventListener('contextmenu', ev => this._onEvent(ev));
    this.node.addEventListener('keydown', ev => this._onKey(ev));
  }

  readonly model: MountsModel;

  /** Errors of the panel's own actions, by connector id (shown as its reason). */
  readonly actionErrors = new Map<string, string>();
  /** Connectors with an action of this user running. */
  readonly busy = new Set<string>();
  /** Connection test results (or 'running'), by connector id. */
  readonly tests = new Map<string, ITestResult | 'running'>();
  /** The connector shown in the browser (marked in the list). */
  browsing: string | null = null;

  /** The selection changed. */
  get selectionChanged(): ISignal<this, string | null> {
    return this._selectionChanged;
  }

  /** Enter or a double click on a connector that can be opened. */
  get openRequested(): ISignal<this, string> {
    return this._openRequested;
  }

  /** F5 on the list. */
  get reloadRequested(): ISignal<this, void> {
    return this._reloadRequested;
  }

  get selectedId(): string | null {
    return this._picked;
  }

  get selected(): IConnector | null {
    return this._picked ? (this.model.connector(this._picked) ?? null) : null;
  }

  select(id: string | null, focus = false): void {
    const old = this._picked;
    const changed = old !== id;
    this._picked = id;
    if (changed) {
      // Only the two rows change: the rest stays in place (a double click's
      // second click lands on the row its first one selected).
      // The previous row only loses its highlight (its open Details stay
      // until the next render: nothing above the pointer shrinks).
      const before = old ? this._item(old) : null;
      before?.classList.remove('jp-mod-selected');
      before?.setAttribute('aria-selected', 'false');
      const c = id ? this.model.connector(id) : undefined;
      const li = id ? this._item(id) : null;
      if (c && li) {
        li.replaceWith(this._itemFor(c, false));
      }
    }
    if (focus && id) {
      this._item(id)?.focus();
    }
    if (changed) {
      this._selectionChanged.emit(id);
    }
  }

  /** Open the context menu on the selected connector (the toolbar's "…" and the keyboard). */
  openContextMenu(): void {
    contextMenuOn(this.node.querySelector('.jp-S3Mounts-connector.jp-mod-selected') as HTMLElement | null);
  }

  render(): void {
    const trans = this._trans;
    const list = this.node;
    // Keep the open state of the Details of the selected row.
    const open = !!list.querySelector('.jp-S3Mounts-connector.jp-mod-selected .jp-S3Mounts-details[open]');
    // A re-render (a live event, F5) keeps the keyboard focus where it was.
    const focused = list.contains(document.activeElement) ? (document.activeElement as HTMLElement) : null;
    const focusedId = (focused?.closest('.jp-S3Mounts-connector') as HTMLElement | null)?.dataset.id ?? null;
    const top = list.scrollTop;
    list.textContent = '';
    const m = this.model;
    list.classList.toggle('jp-mod-stale', m.status === 'down');
    if (m.status === 'ok' && m.connectors.length === 0) {
      list.appendChild(el('li', 'jp-S3Mounts-empty', trans.__('No connectors on this node (an admin adds them as files in the connectors directory)')));
    }
    if (m.status === 'loading') {
      list.appendChild(el('li', 'jp-S3Mounts-empty', trans.__('Loading…')));
    }
    if (this._picked && !m.connector(this._picked)) {
      this._picked = null;
      this._selectionChanged.emit(null);
    }
    for (const c of m.connectors) {
      list.appendChild(this._itemFor(c, open));
    }
    list.scrollTop = top;
    if (focused && !list.contains(focused)) {
      ((focusedId && this._item(focusedId)) || list).focus();
    }
  }

  private _item(id: string): HTMLElement | null {
    return this.node.querySelector(`.jp-S3Mounts-connector[data-id="${CSS.escape(id)}"]`);
  }

  private _itemFor(c: IConnector, detailsOpen: boolean): HTMLLIElement {
    const trans = this._trans;
    const li = el('li', 'jp-S3Mounts-connector');
    li.dataset.id = c.id;
    li.dataset.state = c.state;
    const degraded = isDegraded(c);
    li.dataset.degraded = String(degraded);
    li.setAttribute('role', 'option');
    li.tabIndex = -1;
    const picked = this._picked === c.id;
    li.setAttribute('aria-selected', String(picked));
    li.classList.toggle('jp-mod-selected', picked);
    const busy = this.busy.has(c.id);
    li.setAttribute('aria-busy', String(busy));
    if (this.browsing === c.id) {
      li.classList.add('jp-mod-browsing');
    }
    const row = el('div', 'jp-S3Mounts-connectorRow');
    const kind = degraded ? 'degraded' : c.state;
    const dot = el('span', `jp-S3Mounts-dot jp-S3Mounts-state-${kind}${busy ? ' jp-mod-busy' : ''}`);
    const stateText = degraded ? trans.__('mounted, with errors') : stateLabel(c.state, trans);
    dot.setAttribute('role', 'img');
    dot.setAttribute('aria-label', trans.__('State: %1', busy ? trans.__('working…') : stateText));
    const err = this.actionErrors.get(c.id) || c.error;
    const full = cleanError(err);
    const times = this._clock.note(c.id, c.error);
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

    // Second line: what is going on, a reason in plain words, else where the data is.
    const sub = el('div', 'jp-S3Mounts-sub');
    if (busy) {
      sub.appendChild(el('span', 'jp-S3Mounts-stateText', this._busyText(c)));
    } else if (full) {
      const reason = el('span', `jp-S3Mounts-reason${degraded ? ' jp-mod-degraded' : ''}`, shortReason(err));
      reason.title = full;
      sub.appendChild(reason);
    } else if (c.state === 'mounting' || c.state === 'unmounting') {
      sub.appendChild(el('span', 'jp-S3Mounts-stateText', stateText + '…'));
    } else if (c.bucket) {
      const where = el('span', 'jp-S3Mounts-bucket', `${c.bucket}${c.prefix ? '/' + c.prefix.replace(/^\/+/, '') : ''}`);
      where.title = [c.endpoint, c.mount_path, c.backend ? trans.__('backend: %1', c.backend) : ''].filter(Boolean).join(' · ');
      sub.appendChild(where);
    }
    if (sub.childNodes.length) {
      li.appendChild(sub);
    }
    if (full && picked) {
      li.appendChild(this._details(c, full, err, detailsOpen, times));
    }
    const t = this.tests.get(c.id);
    if (t) {
      li.appendChild(renderTestResult(t, trans));
    }
    return li;
  }

  /** Full message, since when, and when the daemon tries again. */
  private _details(c: IConnector, full: string, err: string, open: boolean, times: IErrorTimes | null): HTMLElement {
    const trans = this._trans;
    const details = el('details', 'jp-S3Mounts-details');
    details.open = open;
    details.appendChild(el('summary', '', trans.__('Details')));
    const body = el('div', 'jp-S3Mounts-detailsText', full);
    body.setAttribute('role', 'note');
    details.appendChild(body);
    const fromAction = this.actionErrors.has(c.id);
    if (times && !fromAction) {
      const at = times.since.toLocaleTimeString();
      details.appendChild(
        el('div', 'jp-S3Mounts-detailsSince', times.sawStart ? trans.__('Since %1', at) : trans.__('Since %1 or earlier (when this panel first saw it)', at))
      );
      const next = retryAt(err, times.changed.toISOString());
      if (next) {
        const line = next.getTime() > Date.now() ? trans.__('Next try at %1', next.toLocaleTimeString()) : trans.__('Tried again at %1', next.toLocaleTimeString());
        details.appendChild(el('div', 'jp-S3Mounts-detailsRetry', line));
      }
    }
    if (c.file) {
      details.appendChild(el('div', 'jp-S3Mounts-detailsFile', trans.__('File: %1', c.file)));
    }
    return details;
  }

  private _busyText(c: IConnector): string {
    const trans = this._trans;
    switch (this._busyAction.get(c.id)) {
      case 'activate':
        return trans.__('activating…');
      case 'deactivate':
        return trans.__('deactivating…');
      case 'test':
        return trans.__('testing the connection…');
      case 'refresh':
        return trans.__('refreshing…');
      default:
        return trans.__('working…');
    }
  }

  /** Mark id busy with action (null: done). */
  setBusy(id: string, action: ConnectorAction | null): void {
    if (action) {
      this.busy.add(id);
      this._busyAction.set(id, action);
    } else {
      this.busy.delete(id);
      this._busyAction.delete(id);
    }
    this.render();
  }

  private _onEvent(ev: Event): void {
    const target = ev.target as HTMLElement | null;
    const li = target?.closest?.('.jp-S3Mounts-connector') as HTMLElement | null;
    const id = li?.dataset.id;
    if (!id || target?.closest('details')) {
      return; // the details toggle itself
    }
    if (this._picked !== id) {
      this.select(id, true);
    }
    // A double click opens: the second click (detail 2) does it, as the
    // dblclick event does not always follow a row re-rendered by the first.
    const second = ev.type === 'click' && (ev as MouseEvent).detail === 2;
    if (second || (ev.type === 'dblclick' && this.browsing !== id)) {
      const c = this.model.connector(id);
      if (c && connectorActions(c).includes('open')) {
        this._openRequested.emit(id);
      }
    }
  }

  private _onKey(ev: KeyboardEvent): void {
    const ids = this.model.connectors.map(c => c.id);
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
        const c = this.selected;
        if (c && connectorActions(c).includes('open')) {
          this._openRequested.emit(c.id);
        }
        break;
      }
      case 'F5':
        this._reloadRequested.emit();
        break;
      case 'ContextMenu':
      case 'F10':
        if (ev.key === 'F10' && !ev.shiftKey) {
          return;
        }
        this.openContextMenu();
        break;
      default:
        return;
    }
    ev.preventDefault();
    ev.stopPropagation();
    if (next !== null && next >= 0 && ids.length) {
      this.select(ids[next], true);
    }
  }

  private _trans: TranslationBundle;
  private _clock = new ErrorClock();
  private _picked: string | null = null;
  private _busyAction = new Map<string, ConnectorAction>();
  private _selectionChanged = new Signal<this, string | null>(this);
  private _openRequested = new Signal<this, string>(this);
  private _reloadRequested = new Signal<this, void>(this);
}
