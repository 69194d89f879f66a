import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Clipboard, ICommandPalette, Notification } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import bucketSvg from '../style/bucket.svg';
import { makeRequester } from './handler';
import { IEventSourceLike, MountsModel } from './model';
import { S3MountsPanel } from './panel';
import { ConnectorAction } from './actions';
import { pyString, renderSnippet } from './snippets';
import { CommandIDs, IEntry, IServerInfo } from './tokens';
import { VERSION } from './version';

export const bucketIcon = new LabIcon({ name: 's3mounts:bucket', svgstr: bucketSvg });

const PLUGIN_ID = 'jupyterlab-s3mounts:plugin';

async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    Clipboard.copyToSystem(text);
  }
}

/** The path of abs relative to the server's root, or null when outside it. */
export function underRoot(root: string, abs: string): string | null {
  if (!root || !abs.startsWith('/')) {
    return null;
  }
  const r = root.replace(/\/+$/, '');
  if (abs === r) {
    return '';
  }
  if (r === '') {
    return abs.slice(1);
  }
  return abs.startsWith(r + '/') ? abs.slice(r.length + 1) : null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'S3 Mounts sidebar: the node s3mounts connectors and a browser of their mounts.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_s3mounts');
    const requester = makeRequester();
    const token = PageConfig.getToken();
    const model = new MountsModel({
      requester,
      eventSource: url =>
        new EventSource(token ? `${url}?token=${encodeURIComponent(token)}` : url, {
          withCredentials: true
        }) as unknown as IEventSourceLike
    });
    const panel = new S3MountsPanel({ model, requester, trans, icon: bucketIcon });
    let snippets: Record<string, string> = {};
    let serverInfo: IServerInfo | null = null;

    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 's3mounts-panel');

    if (settingRegistry) {
      void settingRegistry.load(PLUGIN_ID).then(settings => {
        const apply = () => {
          snippets = (settings.composite.snippets as Record<string, string>) ?? {};
          panel.pageSize = (settings.composite.pageSize as number) ?? 500;
        };
        apply();
        settings.changed.connect(apply);
      }).catch(reason => console.warn('jupyterlab-s3mounts: settings not loaded', reason));
    }

    requester
      .request<IServerInfo>('version')
      .then(info => {
        serverInfo = info;
        panel.socketPath = info.socket_path;
        if (info.version !== VERSION) {
          const msg = trans.__(
            'The S3 Mounts panel (%1) and its server extension (%2) differ: reinstall jupyterlab-s3mounts and restart JupyterLab.',
            VERSION,
            info.version
          );
          panel.setWarning(msg);
          Notification.warning(msg, { autoClose: false });
        }
      })
      .catch(() => {
        const msg = trans.__('The S3 Mounts server extension is not enabled: run "jupyter server extension enable jupyterlab_s3mounts" and restart JupyterLab.');
        panel.setWarning(msg);
      });

    const entry = (): IEntry | null => panel.selectedEntry;
    const inRoot = (e: IEntry | null) => (e && serverInfo ? underRoot(serverInfo.root_dir, e.path) : null);

    app.commands.addCommand(CommandIDs.open, {
      label: trans.__('Open the S3 Mounts panel'),
      caption: trans.__('Show the S3 Mounts sidebar'),
      icon: bucketIcon,
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: trans.__('Refresh S3 connectors'),
      execute: () => panel.reloadConnectors()
    });
    app.commands.addCommand(CommandIDs.copyPath, {
      label: trans.__('Copy path'),
      caption: trans.__('Copy the path on this node, for open() or pandas'),
      isEnabled: () => !!entry(),
      execute: async () => {
        const e = entry();
        if (e) {
          await copyText(e.path);
        }
      }
    });
    app.commands.addCommand(CommandIDs.copyPython, {
      label: trans.__('Copy as Python string'),
      caption: trans.__("The path as a quoted Python literal ('…'), to paste into code"),
      isEnabled: () => !!entry(),
      execute: async () => {
        const e = entry();
        if (e) {
          await copyText(pyString(e.path));
        }
      }
    });
    app.commands.addCommand(CommandIDs.copyUri, {
      label: trans.__('Copy S3 URI'),
      isEnabled: () => !!entry()?.s3_uri,
      execute: async () => {
        const e = entry();
        if (e) {
          await copyText(e.s3_uri);
        }
      }
    });
    app.commands.addCommand(CommandIDs.copySnippet, {
      label: trans.__('Copy code snippet'),
      caption: trans.__('Python code that reads this file (templates in Settings)'),
      isEnabled: () => !!entry(),
      execute: async () => {
        const e = entry();
        if (e) {
          await copyText(renderSnippet(e, snippets));
        }
      }
    });
    app.commands.addCommand(CommandIDs.openEntry, {
      label: trans.__('Open'),
      caption: trans.__('Open in JupyterLab (inside the server root)'),
      isEnabled: () => {
        const e = entry();
        return !!e && (e.type === 'dir' || inRoot(e) !== null);
      },
      execute: async () => {
        const e = entry();
        if (!e) {
          return;
        }
        if (e.type === 'dir') {
          panel.openEntry(e);
          return;
        }
        const rel = inRoot(e);
        if (rel !== null) {
          await app.commands.execute('docmanager:open', { path: rel });
        }
      }
    });
    app.commands.addCommand(CommandIDs.showInBrowser, {
      label: trans.__('Show in File Browser'),
      isEnabled: () => inRoot(entry()) !== null,
      execute: async () => {
        const rel = inRoot(entry());
        if (rel !== null) {
          await app.commands.execute('filebrowser:go-to-path', { path: '/' + rel });
        }
      }
    });
    app.commands.addCommand(CommandIDs.refreshEntry, {
      label: trans.__('Refresh'),
      caption: trans.__('Drop what is cached for this path and reload'),
      isEnabled: () => !!panel.browsing,
      execute: async () => {
        const c = panel.browsing;
        if (!c) {
          return;
        }
        const e = entry();
        const rel = e ? panel.relPath(e) : panel.currentDir;
        await model.refreshPath(c.id, rel);
        panel.reload();
      }
    });

    // The connector rows: the same actions as the panel's toolbar.
    const conn = () => panel.selectedConnector;
    const actionLabels: Record<ConnectorAction, string> = {
      open: trans.__('Open'),
      activate: trans.__('Activate'),
      deactivate: trans.__('Deactivate…'),
      test: trans.__('Test connection'),
      refresh: trans.__('Refresh')
    };
    app.commands.addCommand(CommandIDs.connectorAction, {
      label: args => actionLabels[args.action as ConnectorAction] ?? String(args.action),
      isVisible: args => panel.actionsFor(conn()).includes(args.action as ConnectorAction),
      isEnabled: args => {
        const c = conn();
        return !!c && !panel.isBusy(c.id) && panel.actionsFor(c).includes(args.action as ConnectorAction);
      },
      execute: async args => {
        const c = conn();
        if (c) {
          await panel.runAction(c.id, args.action as ConnectorAction);
        }
      }
    });
    app.commands.addCommand(CommandIDs.copyMountPath, {
      label: trans.__('Copy path'),
      caption: trans.__('Copy the mount path on this node'),
      isEnabled: () => !!conn()?.mount_path,
      execute: async () => {
        const c = conn();
        if (c?.mount_path) {
          await copyText(c.mount_path);
        }
      }
    });
    app.commands.addCommand(CommandIDs.copyMountPython, {
      label: trans.__('Copy as Python string'),
      isEnabled: () => !!conn()?.mount_path,
      execute: async () => {
        const c = conn();
        if (c?.mount_path) {
          await copyText(pyString(c.mount_path));
        }
      }
    });
    app.commands.addCommand(CommandIDs.copyConnectorUri, {
      label: trans.__('Copy S3 URI'),
      isEnabled: () => !!conn()?.bucket,
      execute: async () => {
        const c = conn();
        if (c?.bucket) {
          await copyText(`s3://${c.bucket}/${c.prefix ? c.prefix.replace(/^\/+/, '') : ''}`);
        }
      }
    });
    const connSelector = '.jp-S3Mounts-connector';
    (['open', 'activate', 'deactivate', 'test', 'refresh'] as ConnectorAction[]).forEach((action, rank) =>
      app.contextMenu.addItem({ command: CommandIDs.connectorAction, args: { action }, selector: connSelector, rank: 10 + rank })
    );
    [CommandIDs.copyMountPath, CommandIDs.copyMountPython, CommandIDs.copyConnectorUri].forEach((command, rank) =>
      app.contextMenu.addItem({ command, selector: connSelector, rank: 20 + rank })
    );

    const selector = '.jp-S3Mounts-entry';
    [
      CommandIDs.copyPath,
      CommandIDs.copyPython,
      CommandIDs.copyUri,
      CommandIDs.copySnippet,
      CommandIDs.openEntry,
      CommandIDs.showInBrowser,
      CommandIDs.refreshEntry
    ].forEach((command, rank) => app.contextMenu.addItem({ command, selector, rank: 10 + rank }));

    if (palette) {
      const category = trans.__('S3 Mounts');
      for (const command of [CommandIDs.open, CommandIDs.refresh]) {
        palette.addItem({ command, category });
      }
    }
  }
};

export default plugin;
