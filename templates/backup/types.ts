// The typed inputs of the backup templates. Every field is required: a template that is missing
// one is a type error, not a file with a hole in it. Secrets arrive as values here (read on the
// control machine from their inventory references) and end up only in root-only 0600 files.
// The remote storage and the retention settings are declared once, with the inventory's backup
// section (src/inventory/backup-schema.ts).
import type { BackupRetention, LogFrequency, RemoteStorage } from '../../src/inventory/backup-schema.js';

export interface ClickHouseCredentials {
  host: string;
  port: number;
  username: string;
  /** Secret: written only into config.yml (0600 root). */
  password: string;
  /** clickhouse.timeout of clickhouse-backup, e.g. "5m". */
  timeout: string;
}

export interface BackupConfigParams {
  /** Secrets read: strings (an sftp password may be empty when a key is used). */
  remote: RemoteStorage<string>;
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

export interface AgentParams extends BackupRetention {
  paths: AgentPaths;
  hostName: string;
  cluster: string;
  shard: string;
  /** false on the replicas that are not the active one of their shard. */
  enabled: boolean;
  activeHost: string;
  namePrefix: string;
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
  frequency: LogFrequency;
  rotate: number;
}
