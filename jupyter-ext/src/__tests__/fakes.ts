import { AgentError, IRequester } from '../requester';
import { IConnector, IEntry } from '../tokens';

/** A requester answering from a route table; records every call. */
export class FakeRequester implements IRequester {
  calls: { path: string; method: string }[] = [];
  routes: ((path: string, method: string) => unknown | undefined)[] = [];
  down = false;

  url(path: string): string {
    return `http://jupyter/s3mounts/${path}`;
  }

  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const method = init.method ?? 'GET';
    this.calls.push({ path, method });
    if (this.down) {
      throw new AgentError(503, 'unavailable', 'The s3mounts agent is not running on this node (no socket)');
    }
    for (const r of this.routes) {
      const v = r(path, method);
      if (v !== undefined) {
        if (v instanceof Error) {
          throw v;
        }
        return v as T;
      }
    }
    throw new AgentError(404, 'not_found', `no route ${method} ${path}`);
  }
}

export function connector(id: string, over: Partial<IConnector> = {}): IConnector {
  return {
    id,
    name: `Name ${id}`,
    description: '',
    endpoint: 'http://127.0.0.1:9000',
    region: 'us-east-1',
    bucket: 'b',
    prefix: '',
    mount_name: id,
    mount_path: `/mnt/${id}`,
    mode: 'ro',
    backend: 'default',
    active: false,
    state: 'inactive',
    error: '',
    actions: ['view', 'browse', 'test', 'activate', 'deactivate'],
    ...over
  };
}

export function entry(name: string, type: 'file' | 'dir' = 'file', dir = '/mnt/c'): IEntry {
  return {
    name,
    type,
    size: 10,
    mtime: '2026-01-01T00:00:00Z',
    path: `${dir}/${name}`,
    s3_uri: `s3://b/${name}`
  };
}

/** A controllable EventSource. */
export class FakeEventSource {
  static all: FakeEventSource[] = [];
  onopen: ((ev: any) => any) | null = null;
  onmessage: ((ev: { data: string }) => any) | null = null;
  onerror: ((ev: any) => any) | null = null;
  closed = false;
  constructor(readonly url: string) {
    FakeEventSource.all.push(this);
  }
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.onopen?.({});
  }
  send(data: string): void {
    this.onmessage?.({ data });
  }
  fail(): void {
    this.onerror?.({});
  }
}

/** Timers run by hand. */
export class ManualTimers {
  pending: { fn: () => void; ms: number; id: number }[] = [];
  private next = 1;
  setTimeout(fn: () => void, ms: number): number {
    const id = this.next++;
    this.pending.push({ fn, ms, id });
    return id;
  }
  clearTimeout(id: number): void {
    this.pending = this.pending.filter(p => p.id !== id);
  }
  runAll(): void {
    const p = this.pending;
    this.pending = [];
    p.forEach(x => x.fn());
  }
}

export const flush = () => new Promise(resolve => setTimeout(resolve, 0));
