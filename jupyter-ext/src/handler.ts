import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { AgentError, IRequester } from './requester';

export { AgentError, IRequester };

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
