import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { AgentError, IRequester } from './requester';
import { AGENT_DOWN, IConnector, ITestResult } from './tokens';

/** The part of EventSource the model uses (so tests can drive it). */
export interface IEventSourceLike {
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: { data: string }) => any) | null;
  onerror: ((ev: any) => any) | null;
  addEventListener?(type: string, listener: (ev: any) => any): void;
  close(): void;
}

export type EventSourceFactory = (url: string) => IEventSourceLike;

export type Status = 'loading' | 'ok' | 'down' | 'error';

/** Timers, replaceable in tests. */
export interface ITimers {
  setTimeout(fn: () => void, ms: number): any;
  clearTimeout(handle: any): void;
}

export namespace MountsModel {
  export interface IOptions {
    requester: IRequester;
    /** Opens the event stream; absent: polling only. */
    eventSource?: EventSourceFactory | null;
    /** Seconds between polls while the event stream is down. */
    pollInterval?: number;
    /** Reconnect backoff of the event stream, ms. */
    reconnectMin?: number;
    reconnectMax?: number;
    timers?: ITimers;
    /** Start polling and streaming at once (default true). */
    autoStart?: boolean;
  }
}

/**
 * The connectors this user may see, kept current by the daemon's event
 * stream (`/v1/events`, reconnecting with backoff) and by a Poll that runs
 * only while the stream is down and the panel is visible.
 */
export class MountsModel {
  constructor(options: MountsModel.IOptions) {
    this._requester = options.requester;
    this._esFactory = options.eventSource ?? null;
    this._reconnectMin = options.reconnectMin ?? 1000;
    this._reconnectMax = options.reconnectMax ?? 30000;
    this._timers = options.timers ?? {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: h => clearTimeout(h)
    };
    const interval = (options.pollInterval ?? 10) * 1000;
    this._poll = new Poll({
      auto: false,
      factory: () => this.refresh(),
      frequency: { interval, backoff: true, max: 6 * interval },
      standby: () => this._live || !this._visible || Private.documentHidden(),
      name: 's3mounts:connectors'
    });
    if (options.autoStart ?? true) {
      this.start();
    }
  }

  /** Emitted whenever connectors, status or message change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get connectors(): readonly IConnector[] {
    return this._connectors;
  }

  get status(): Status {
    return this._status;
  }

  /** The message to show when status is not "ok". */
  get message(): string {
    return this._message;
  }

  /** Whether the event stream is connected. */
  get live(): boolean {
    return this._live;
  }

  get reconnectDelay(): number {
    return this._delay;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  connector(id: string): IConnector | undefined {
    return this._connectors.find(c => c.id === id);
  }

  start(): void {
    void this._poll.start();
    void this.refresh().catch(() => undefined);
    this._connect();
  }

  /** The panel's visibility: polling stands by while hidden. */
  setVisible(visible: boolean): void {
    this._visible = visible;
    if (visible && !this._live) {
      void this._poll.refresh();
    }
  }

  /** Fetch the whole list now. Never throws for an agent that is down. */
  async refresh(): Promise<void> {
    try {
      const data = await this._requester.request<{ connectors: IConnector[] | null }>(
        'api/v1/connectors'
      );
      this._connectors = [...(data.connectors ?? [])].sort(Private.byName);
      this._setStatus('ok', '');
    } catch (error) {
      this._fail(error);
      if (!(error instanceof AgentError)) {
        throw error;
      }
    }
  }

  /** Apply one event of /v1/events (a Connector in JSON). */
  handleEvent(data: string): void {
    let c: IConnector;
    try {
      c = JSON.parse(data);
    } catch {
      return; // a comment or keep-alive
    }
    if (!c || typeof c.id !== 'string') {
      return;
    }
    const i = this._connectors.findIndex(x => x.id === c.id);
    const deleted = (c as any).deleted === true;
    if (deleted) {
      if (i >= 0) {
        this._connectors = this._connectors.filter(x => x.id !== c.id);
      }
    } else if (i >= 0) {
      const next = this._connectors.slice();
      // Keep the caller's actions when an event omits them.
      next[i] = { ...c, actions: c.actions ?? this._connectors[i].actions };
      this._connectors = next.sort(Private.byName);
    } else {
      this._connectors = [...this._connectors, c].sort(Private.byName);
    }
    this._status = 'ok';
    this._message = '';
    this._changed.emit();
  }

  async activate(id: string): Promise<IConnector> {
    return this._act(id, 'activate');
  }

  async deactivate(id: string): Promise<IConnector> {
    return this._act(id, 'deactivate');
  }

  async test(id: string): Promise<ITestResult> {
    return this._requester.request<ITestResult>(
      `api/v1/connectors/${encodeURIComponent(id)}/test`,
      { method: 'POST' }
    );
  }

  /** Drop what the daemon caches under path (relative to the mount). */
  async refreshPath(id: string, path: string): Promise<void> {
    await this._requester.request(
      `api/v1/connectors/${encodeURIComponent(id)}/refresh?path=${encodeURIComponent(path)}`,
      { method: 'POST' }
    );
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._poll.dispose();
    this._closeStream();
    if (this._retry !== null) {
      this._timers.clearTimeout(this._retry);
      this._retry = null;
    }
    Signal.clearData(this);
  }

  private async _act(id: string, what: 'activate' | 'deactivate'): Promise<IConnector> {
    const c = await this._requester.request<IConnector>(
      `api/v1/connectors/${encodeURIComponent(id)}/${what}`,
      { method: 'POST' }
    );
    this.handleEvent(JSON.stringify(c));
    return c;
  }

  private _connect(): void {
    if (!this._esFactory || this._disposed) {
      return;
    }
    this._retry = null;
    const es = this._esFactory(this._requester.url('api/v1/events'));
    this._es = es;
    const onMessage = (ev: { data: string }) => this.handleEvent(ev.data);
    es.onopen = () => {
      if (this._es !== es) {
        return;
      }
      this._live = true;
      this._delay = 0;
      // Anything may have changed while the stream was down.
      void this.refresh().catch(() => undefined);
      this._changed.emit();
    };
    es.onmessage = onMessage;
    es.addEventListener?.('connector', onMessage);
    es.onerror = () => {
      if (this._es !== es) {
        return;
      }
      this._closeStream();
      this._delay = this._delay === 0 ? this._reconnectMin : Math.min(this._delay * 2, this._reconnectMax);
      this._retry = this._timers.setTimeout(() => this._connect(), this._delay);
      // The stream is down: polling takes over, and tells whether the agent is.
      void this._poll.refresh();
      this._changed.emit();
    };
  }

  private _closeStream(): void {
    const es = this._es;
    this._es = null;
    this._live = false;
    if (es) {
      es.onopen = es.onmessage = es.onerror = null;
      es.close();
    }
  }

  private _fail(error: unknown): void {
    if (error instanceof AgentError && error.unavailable) {
      this._setStatus('down', AGENT_DOWN);
    } else {
      this._setStatus('error', error instanceof Error ? error.message : String(error));
    }
  }

  private _setStatus(status: Status, message: string): void {
    this._status = status;
    this._message = message;
    this._changed.emit();
  }

  private _requester: IRequester;
  private _esFactory: EventSourceFactory | null;
  private _es: IEventSourceLike | null = null;
  private _live = false;
  private _visible = true;
  private _delay = 0;
  private _reconnectMin: number;
  private _reconnectMax: number;
  private _retry: any = null;
  private _timers: ITimers;
  private _poll: Poll;
  private _connectors: IConnector[] = [];
  private _status: Status = 'loading';
  private _message = '';
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}

namespace Private {
  /** By the name shown (case-insensitive, numbers in order), then by id. */
  export function byName(a: IConnector, b: IConnector): number {
    const n = (a.name || a.id).localeCompare(b.name || b.id, undefined, { numeric: true, sensitivity: 'base' });
    return n !== 0 ? n : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  }
  export function documentHidden(): boolean {
    return typeof document !== 'undefined' && document.hidden;
  }
}
