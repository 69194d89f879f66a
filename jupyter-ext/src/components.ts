/** Small DOM building blocks of the S3 Mounts panel. */
import { TranslationBundle } from '@jupyterlab/translation';

import { checkSkipped } from './actions';
import { cleanError, shortReason } from './reason';
import { IConnector, ITestResult } from './tokens';

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** 2026-11-23 20:46, in local time: short enough for a sidebar. */
export function formatDate(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const n = document.createElement(tag);
  if (cls) {
    n.className = cls;
  }
  if (text) {
    n.textContent = text;
  }
  return n;
}

/** The checks of a connection test, each error under its own check; skipped ones not as failures. */
export function renderTestResult(t: ITestResult | 'running', trans: TranslationBundle): HTMLElement {
  const box = el('ul', 'jp-S3Mounts-checks');
  box.setAttribute('aria-label', trans.__('Connection test'));
  if (t === 'running') {
    box.appendChild(el('li', 'jp-S3Mounts-checkRunning', trans.__('Testing…')));
    return box;
  }
  for (const ch of t.checks ?? []) {
    const skipped = checkSkipped(ch);
    const kind = ch.ok ? 'ok' : skipped ? 'skip' : 'fail';
    const li = el('li', `jp-S3Mounts-check jp-S3Mounts-check-${kind}`);
    li.dataset.check = ch.name;
    const mark = el('span', 'jp-S3Mounts-checkMark', ch.ok ? '✓' : skipped ? '–' : '✗');
    mark.setAttribute('aria-label', ch.ok ? trans.__('passed') : skipped ? trans.__('not run') : trans.__('failed'));
    li.appendChild(mark);
    li.appendChild(el('span', 'jp-S3Mounts-checkName', ch.name));
    li.appendChild(el('span', 'jp-S3Mounts-checkMs', skipped ? trans.__('not run') : `${ch.ms} ms`));
    if (ch.error && !skipped) {
      const e = el('span', 'jp-S3Mounts-checkError', shortReason(ch.error));
      e.title = cleanError(ch.error);
      li.appendChild(e);
    }
    box.appendChild(li);
  }
  box.appendChild(
    el('li', `jp-S3Mounts-checkSummary ${t.ok ? 'jp-S3Mounts-check-ok' : 'jp-S3Mounts-check-fail'}`, t.ok ? trans.__('Connection OK') : trans.__('Connection failed'))
  );
  return box;
}

/** A state in words. */
export function stateLabel(s: string, trans: TranslationBundle): string {
  switch (s) {
    case 'inactive':
      return trans.__('inactive');
    case 'mounting':
      return trans.__('mounting');
    case 'mounted':
      return trans.__('mounted');
    case 'unmounting':
      return trans.__('unmounting');
    case 'error':
      return trans.__('error');
    default:
      return s;
  }
}

/**
 * Breadcrumbs as in JupyterLab's file browser: the connector (the root),
 * then each folder; each one a button that goes there, the last one current.
 */
export function renderCrumbs(nav: HTMLElement, c: IConnector, dir: string, go: (dir: string) => void): void {
  nav.textContent = '';
  const parts = dir ? dir.split('/') : [];
  const root = el('button', 'jp-S3Mounts-crumb jp-S3Mounts-crumbRoot', c.name || c.id);
  root.title = c.mount_path;
  root.onclick = () => go('');
  if (parts.length === 0) {
    root.setAttribute('aria-current', 'page');
  }
  nav.appendChild(root);
  parts.forEach((p, i) => {
    nav.appendChild(el('span', 'jp-S3Mounts-crumbSep', '/'));
    const b = el('button', 'jp-S3Mounts-crumb', p);
    const target = parts.slice(0, i + 1).join('/');
    b.title = target;
    b.onclick = () => go(target);
    if (i === parts.length - 1) {
      b.setAttribute('aria-current', 'page');
    }
    nav.appendChild(b);
  });
}

/** Open JupyterLab's context menu on row, as a right click there would (keyboard users). */
export function contextMenuOn(row: HTMLElement | null): void {
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
