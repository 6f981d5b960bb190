// The topology chops works on, as loaded and validated from inventory.yml.
// Every host belongs to exactly one replica slot of one shard of one cluster.

/** Where a secret comes from. Secrets are never written inline in the inventory. */
import type { SecretRef } from './secret-ref.js';

export type { SecretRef };

export interface SshSettings {
  /** DNS name or IP the control machine connects to. */
  address: string;
  port: number;
  user: string;
  /** Private key file; absent means "use ssh-agent" when agent is true. */
  identityFile?: string;
  /** Use $SSH_AUTH_SOCK. */
  agent: boolean;
  /** Passphrase of identityFile, by reference. */
  passphrase?: SecretRef;
  /** OpenSSH known_hosts file checked strictly. */
  knownHosts: string;
  /** Explicit opt-in: accept and record an unknown host key (never a changed one). */
  trustOnFirstUse: boolean;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  /** Prefix changes with `sudo -n` (the login user is not root). */
  sudo: boolean;
  /** Optional bastion: name of another inventory host or an inline address. */
  jump?: { address: string; port: number; user: string; identityFile?: string; agent: boolean };
}

export interface ClickHouseSettings {
  httpPort: number;
  tcpPort: number;
  user: string;
  password?: SecretRef;
  /** systemd unit name, used when no custom commands are given. */
  service: string;
  /** Custom service control for hosts without systemd (each a shell command). */
  startCommand?: string;
  stopCommand?: string;
  statusCommand?: string;
  dataDir: string;
  errorLog: string;
}

/** Thresholds for the health gates: declared in src/gates/thresholds.ts (durations in ms). */
export type { GateSettings } from '../gates/thresholds.js';
import type { GateSettings } from '../gates/thresholds.js';

export interface Host {
  /** Unique inventory name, e.g. "ch-01-1". */
  name: string;
  cluster: string;
  /** 1-based shard index in the cluster (order of the inventory). */
  shard: number;
  /** Optional shard label as the servers' macros name it ("01"); defaults to the index. */
  shardName: string;
  /** 1-based replica index within its shard. */
  replica: number;
  /** Replica name as the servers' `{replica}` macro says; defaults to the host name. */
  replicaName: string;
  connection: 'ssh' | 'local';
  ssh: SshSettings;
  clickhouse: ClickHouseSettings;
  gates: GateSettings;
  vars: Record<string, unknown>;
  /** file:line:column of the host entry, for messages. */
  where: string;
}

export interface Shard {
  index: number;
  name: string;
  replicas: Host[];
}

export interface Cluster {
  name: string;
  shards: Shard[];
}

export interface Inventory {
  /** Absolute path of the file it was loaded from. */
  path: string;
  /** sha256 of the file bytes: a resumed run refuses a changed inventory. */
  hash: string;
  clusters: Cluster[];
  /** All hosts in inventory order (cluster, shard, replica). */
  hosts: Host[];
  /** Where run state, locks and logs go, and for how long logs are kept. */
  stateDir: string;
  logRetentionDays: number;
  /** The `backup:` section (chops backup), when present. */
  backup?: import('./backup-schema.js').BackupSettings;
  /** The `config:` section (config-push), when present. */
  config?: import('./config-schema.js').ConfigSettings;
}
