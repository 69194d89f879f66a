/**
 * The "S3 Mounts" sidebar: a toolbar (JupyterLab's Toolbar/ToolbarButton)
 * acting on the selected connector, the agent-down banner, the connector
 * list, and the browser of a mounted connector. This file only wires them
 * together and runs the actions (Deactivate asks first, with showDialog).
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  checkIcon,
  ellipsesIcon,
  folderIcon,
  LabIcon,
  refreshIcon,
  runIcon,
  stopIcon,
  Toolbar,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import { ConnectorAction, connectorActions } from './actions';
import { MountBrowser } from './browser';
import { el } from './components';
import { ConnectorList } from './connectorlist';
import { AgentError, IRequester } from './handler';
import { MountsModel } from './model';
import { cleanError, shortReason } from './reason';
import { AGENT_DOWN, IConnector, IEntry } from './tokens';

export { ROW_HEIGHT } from './browser';

export namespace S3MountsPanel {
  export interface IOptions {
    model: MountsModel;
    requester: IRequester;
    trans: TranslationBundle;
    icon: LabIcon;
    pageSize?: number;
  }
}

export class S3MountsPanel extends Panel {
  constructor(options: S3MountsPanel.IOptions) {
    super();
    this.model = options.model;
    this._trans = options.trans;
    const trans = this._trans;
    this.id = 's3mounts-panel';
    this.addClass('jp-S3Mounts');
    this.title.icon = options.icon;
    this.title.caption = trans.__('S3 Mounts');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('S3 Mounts'));

    // Header: the title, then the actions on the selected connector.
    this._toolbar = new Toolbar();
    this._toolbar.addClass('jp-S3Mounts-header');
    this._toolbar.addClass('jp-S3Mounts-toolbar');
    this._toolbar.node.setAttribute('aria-label', trans.__('Connector actions'));
    const title = new Widget({ node: el('h2', 'jp-S3Mounts-title', trans.__('S3 Mounts')) });
    this._toolbar.addItem('title', title);
    this._toolbar.addItem('spacer', Toolbar.createSpacerItem());
    const tool = (action: ConnectorAction, icon: LabIcon, tooltip: string) => {
      const b = new ToolbarButton({
        icon,
        tooltip,
        className: `jp-S3Mounts-tool jp-S3Mounts-${action}`,
        onClick: () => {
          const c = this.selectedConnector;
          if (c) {
            void this.runAction(c.id, action);
          }
        }
      });
      b.hide();
      this._tools.set(action, b);
      this._toolbar.addItem(action, b);
    };
    tool('open', folderIcon, trans.__('Open'));
    tool('activate', runIcon, trans.__('Activate'));
    tool('deactivate', stopIcon, trans.__('Deactivate…'));
    tool('test', checkIcon, trans.__('Test connection'));
    tool('refresh', refreshIcon, trans.__('Refresh (drop cached listings)'));
    this._more = new ToolbarButton({
      icon: ellipsesIcon,
      tooltip: trans.__('More actions'),
      className: 'jp-S3Mounts-more',
      onClick: () => this._list.openContextMenu()
    });
    this._more.hide();
    this._toolbar.addItem('more', this._more);
    this._reloadAll = new ToolbarButton({
      icon: refreshIcon,
      tooltip: trans.__('Reload the list of connectors (F5)'),
      className: 'jp-S3Mounts-refreshAll',
      onClick: () => void this.reloadConnectors()
    });
    this._toolbar.addItem('reload', this._reloadAll);

    this._warning = new Widget({ node: el('div', 'jp-S3Mounts-warning') });
    this._warning.hide();
    this._banner = new Widget({ node: el('div', 'jp-S3Mounts-banner') });
    this._banner.node.setAttribute('role', 'alert');
    this._banner.hide();

    this._list = new ConnectorList({ model: this.model, trans });
    this._list.selectionChanged.connect(() => this._renderToolbar());
    this._list.openRequested.connect((_, id) => this.browse(id));
    this._list.reloadRequested.connect(() => void this.reloadConnectors());

    this._browser = new MountBrowser({
      requester: options.requester,
      trans,
      connector: id => this.model.connector(id),
      pageSize: options.pageSize
    });
    this._browser.closed.connect(() => {
      this.removeClass('jp-mod-browsing');
      this._list.browsing = null;
      this._list.render();
    });

    for (const w of [this._toolbar, this._warning, this._banner, this._list, this._browser]) {
      this.addWidget(w);
    }
    this.model.changed.connect(this._onModelChanged, this);
    this._render();
  }

  readonly model: MountsModel;

  get pageSize(): number {
    return this._browser.pageSize;
  }

  set pageSize(n: number) {
    this._browser.pageSize = n;
  }

  /** The connector list and the browser (for the commands and tests). */
  get connectorList(): ConnectorList {
    return this._list;
  }

  get browser(): MountBrowser {
    return this._browser;
  }

  /** The entry the context menu acts on (the selected row). */
  get selectedEntry(): IEntry | null {
    return this._browser.selectedEntry;
  }

  /** The connector being browsed. */
  get browsing(): IConnector | null {
    return this._browser.browsing;
  }

  /** The current directory relative to the mount. */
  get currentDir(): string {
    return this._browser.currentDir;
  }

  /** The connector selected in the list (the toolbar and context menu act on it). */
  get selectedConnector(): IConnector | null {
    return this._list.selected;
  }

  /** Where the server extension talks to the daemon (for the agent-down banner). */
  socketPath = '';

  /** Show a warning line (e.g. a version mismatch). */
  setWarning(text: string): void {
    this._warning.node.textContent = text;
    this._warning.setHidden(!text);
  }

  selectConnector(id: string | null): void {
    this._list.select(id);
  }

  /** Open connector id at dir (relative to its mount). */
  browse(id: string, dir = ''): void {
    this._list.browsing = id;
    this.addClass('jp-mod-browsing');
    this._browser.browse(id, dir);
    this._list.render();
  }

  reload(): void {
    this._browser.reload();
  }

  closeBrowser(): void {
    this._browser.close();
  }

  openEntry(entry: IEntry): void {
    this._browser.openEntry(entry);
  }

  relPath(entry: IEntry): string {
    return this._browser.relPath(entry);
  }

  /** The actions offered for c now. */
  actionsFor(c: IConnector | null): ConnectorAction[] {
    return c ? connectorActions(c) : [];
  }

  /** An action of this user runs on id, or the agent is down. */
  isBusy(id: string): boolean {
    return this._list.busy.has(id) || this.model.status === 'down';
  }

  /** Reload the list of connectors (F5, the toolbar), busy while it runs. */
  async reloadConnectors(): Promise<void> {
    if (this._reloading) {
      return;
    }
    this._reloading = true;
    this._reloadAll.enabled = false;
    this.node.classList.add('jp-mod-reloading');
    try {
      await this.model.refresh();
    } catch {
      // the model shows it (status error)
    } finally {
      this._reloading = false;
      this._reloadAll.enabled = true;
      this.node.classList.remove('jp-mod-reloading');
    }
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
        return this._run(id, action, async () => {
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
        return this._run(id, action, async () => {
          await this.model.deactivate(id);
        });
      }
      case 'test':
        return this._run(id, action, async () => {
          this._list.tests.set(id, 'running');
          this._list.render();
          try {
            this._list.tests.set(id, await this.model.test(id));
          } catch (e) {
            this._list.tests.delete(id);
            throw e;
          }
        });
      case 'refresh':
        return this._run(id, action, async () => {
          await this.model.refreshPath(id, '');
          if (this._browser.browsingId === id) {
            this.reload();
          }
        });
    }
  }

  protected onAfterShow(msg: Message): void {
    this.model.setVisible(true);
  }

  protected onAfterHide(msg: Message): void {
    this.model.setVisible(false);
  }

  private _onModelChanged(): void {
    const m = this.model;
    // For tests and styling: whether the event stream is connected.
    this.node.dataset.live = String(m.live);
    const banner = this._banner.node;
    banner.textContent = '';
    banner.title = '';
    this._banner.setHidden(m.status === 'ok' || m.status === 'loading');
    if (m.status === 'down') {
      const trans = this._trans;
      banner.appendChild(el('div', 'jp-S3Mounts-bannerText', trans.__(AGENT_DOWN)));
      const next = this.socketPath
        ? trans.__(
            'Next step: ask an admin to start s3mountd (systemctl start s3mountd) and check that its socket %1 exists and that your user is in its group. This panel reconnects by itself.',
            this.socketPath
          )
        : trans.__('Next step: ask an admin to start s3mountd (systemctl start s3mountd) and check its socket. This panel reconnects by itself.');
      banner.appendChild(el('div', 'jp-S3Mounts-bannerNext', next));
    } else if (m.status === 'error') {
      banner.appendChild(el('div', 'jp-S3Mounts-bannerText', shortReason(m.message)));
      banner.title = cleanError(m.message);
    }
    const b = this._browser.browsingId;
    if (b) {
      const c = m.connector(b);
      if (!c || c.state !== 'mounted') {
        this._browser.close();
      }
    }
    this._render();
  }

  private _render(): void {
    this._list.render();
    this._renderToolbar();
  }

  private _renderToolbar(): void {
    const c = this.selectedConnector;
    const offered = new Set(this.actionsFor(c));
    const busy = !c || this.isBusy(c.id);
    for (const [action, b] of this._tools) {
      b.setHidden(!offered.has(action));
      b.enabled = !busy;
    }
    this._more.setHidden(!c);
  }

  private async _run(id: string, action: ConnectorAction, fn: () => Promise<void>): Promise<void> {
    this._list.actionErrors.delete(id);
    this._list.setBusy(id, action);
    this._renderToolbar();
    try {
      await fn();
    } catch (e) {
      const msg =
        e instanceof AgentError && e.unavailable
          ? this._trans.__(AGENT_DOWN)
          : e instanceof AgentError && (e.status === 403 || e.code === 'forbidden')
            ? this._trans.__('You may not do this (forbidden): %1', cleanError(e.message))
            : e instanceof Error
              ? e.message
              : String(e);
      this._list.actionErrors.set(id, msg);
    } finally {
      this._list.setBusy(id, null);
      this._renderToolbar();
    }
  }

  private _trans: TranslationBundle;
  private _toolbar: Toolbar;
  private _tools = new Map<ConnectorAction, ToolbarButton>();
  private _more: ToolbarButton;
  private _reloadAll: ToolbarButton;
  private _warning: Widget;
  private _banner: Widget;
  private _list: ConnectorList;
  private _browser: MountBrowser;
  private _reloading = false;
}
