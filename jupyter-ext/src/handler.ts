import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

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

export function makeRequester(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): IRequester {
  const url = (path: string) => URLExt.join(settings.baseUrl, 's3mounts', path);
  return {
    url,
    async request<T>(path: string, init: RequestInit = {}): Promise<T> {
      let response: Response;
      try {
        response = await ServerConnection.makeRequest(url(path), init, settings);
      } catch (error) {
        throw new AgentError(0, 'unavailable', `Jupyter server unreachable: ${error}`);
      }
      const text = await response.text();
      let data: any = null;
      if (text.length > 0) {
        try {
          data = JSON.parse(text);
        } catch {
          data = null;
        }
      }
      if (!response.ok) {
        const err = data?.error;
        throw new AgentError(
          response.status,
          err?.code ?? (response.status === 503 ? 'unavailable' : 'internal'),
          err?.message ?? data?.message ?? `${response.status} ${response.statusText}`
        );
      }
      return data as T;
    }
  };
}
