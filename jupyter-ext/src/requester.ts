/** An error answer of the daemon (or of the server extension). */
export class AgentError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message);
    this.name = 'AgentError';
  }
  /** The daemon is not reachable (or Jupyter itself is gone). */
  get unavailable(): boolean {
    return this.code === 'unavailable' || this.status === 0;
  }
}

/** The one way the front end talks to the server extension. */
export interface IRequester {
  request<T>(path: string, init?: RequestInit): Promise<T>;
  /** Absolute URL of path, for EventSource. */
  url(path: string): string;
}
