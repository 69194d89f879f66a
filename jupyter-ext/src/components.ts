/** Small DOM building blocks of the S3 Mounts panel. */
import { TranslationBundle } from '@jupyterlab/translation';

import { checkSkipped } from './actions';
import { cleanError, shortReason } from './reason';
import { ITestResult } from './tokens';

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
