/** Wire types of s3mountd's socket API (SPEC: "The socket API"). */

export type State = 'inactive' | 'mounting' | 'mounted' | 'unmounting' | 'error';
export type Action = 'view' | 'browse' | 'test' | 'activate' | 'deactivate';

export interface IConnector {
  id: string;
  name: string;
  description: string;
  endpoint: string;
  region: string;
  bucket: string;
  prefix: string;
  mount_name: string;
  mount_path: string;
  mode: 'ro' | 'rw' | string;
  backend: string;
  active: boolean;
  state: State;
  error: string;
  created_by?: string;
  created_at?: string | null;
  updated_at?: string | null;
  file?: string;
  owner?: string;
  group?: string;
  file_mode?: string;
  dir_mode?: string;
  actions: Action[] | null;
}

export interface IEntry {
  name: string;
  type: 'file' | 'dir';
  size: number;
  mtime: string;
  /** Absolute path on the node: what "Copy path" copies. */
  path: string;
  /** s3://bucket/key */
  s3_uri: string;
}

export interface IFiles {
  path: string;
  entries: IEntry[] | null;
  next_cursor?: string;
}

export interface ICheck {
  name: string;
  ok: boolean;
  error?: string;
  ms: number;
}

export interface ITestResult {
  ok: boolean;
  checks: ICheck[];
}

/** The version answer of the server extension. */
export interface IServerInfo {
  version: string;
  root_dir: string;
  socket_path: string;
}

export namespace CommandIDs {
  export const open = 's3mounts:open-panel';
  export const refresh = 's3mounts:refresh';
  export const copyPath = 's3mounts:copy-path';
  export const copyUri = 's3mounts:copy-s3-uri';
  export const copySnippet = 's3mounts:copy-snippet';
  export const openEntry = 's3mounts:open-entry';
  export const showInBrowser = 's3mounts:show-in-file-browser';
  export const refreshEntry = 's3mounts:refresh-entry';
  export const copyPython = 's3mounts:copy-python-string';
  export const connectorAction = 's3mounts:connector-action';
  export const copyMountPath = 's3mounts:copy-mount-path';
  export const copyMountPython = 's3mounts:copy-mount-python-string';
  export const copyConnectorUri = 's3mounts:copy-connector-s3-uri';
}

/** The message the panel shows when the daemon cannot be reached. */
export const AGENT_DOWN = 'The s3mounts agent is not running on this node';
