// The typed inputs of the backup templates. Every field is required: a template that is missing
// one is a type error, not a file with a hole in it. Secrets arrive as values here (read on the
// control machine from their inventory references) and end up only in root-only 0600 files.

export interface ClickHouseCredentials {
  host: string;
  port: number;
  username: string;
  /** Secret: written only into config.yml (0600 root). */
  password: string;
  /** clickhouse.timeout of clickhouse-backup, e.g. "5m". */
  timeout: string;
}

export interface SftpRemote {
  type: 'sftp';
  address: string;
  port: number;
  username: string;
  /** Secret (may be empty when a key is used). */
  password: string;
  /** Path of a private key on the node (root-only), or "" for password login. */
  key: string;
  path: string;
  compressionFormat: 'tar' | 'gzip' | 'zstd' | 'none';
}

export interface S3Remote {
  type: 's3';
  bucket: string;
  endpoint: string;
  region: string;
  path: string;
  /** Secrets. */
  accessKey: string;
  secretKey: string;
  compressionFormat: 'tar' | 'gzip' | 'zstd' | 'none';
}

export type RemoteStorage = SftpRemote | S3Remote;

export interface BackupConfigParams {
  remote: RemoteStorage;
  clickhouse: ClickHouseCredentials;
  logLevel: 'error' | 'warning' | 'info' | 'debug';
}

/** Where the agent's files live on a node (one set of paths for every template). */
export interface AgentPaths {
  agent: string;
  config: string;
  cronFile: string;
  logrotateFile: string;
  logDir: string;
  stateDir: string;
  /** The node lock shared with chops (tasks/backup/node-lock.ts). */
  lockFile: string;
  binary: string;
}

export interface AgentParams {
  paths: AgentPaths;
  hostName: string;
  cluster: string;
  shard: string;
  /** false on the replicas that are not the active one of their shard. */
  enabled: boolean;
  activeHost: string;
  namePrefix: string;
  keepLocal: number;
  keepRemote: number;
  /** A FULL at least this often (seconds): a DIFF whose newest FULL is older becomes a FULL. */
  fullIntervalSeconds: number;
  /** At most this many DIFFs behind a FULL. */
  maxChain: number;
  lockWaitSeconds: number;
  commandTimeoutSeconds: number;
  listTimeoutSeconds: number;
}

export interface CronParams {
  paths: AgentPaths;
  /** Five-field expressions, already validated with cron-parser. */
  full: string;
  diff: string;
  enabled: boolean;
  /** Why the lines are commented out (disabled replicas). */
  disabledReason: string;
}

export interface LogrotateParams {
  paths: AgentPaths;
  /** daily | weekly | monthly */
  frequency: 'daily' | 'weekly' | 'monthly';
  rotate: number;
}
