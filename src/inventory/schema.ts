// The inventory format, declared once: every key, its type, its default and its output name.
// inventory.yml at the repository root is the documented example of this shape.

import { DURATION_RANGES as R } from './values.js';
import { THRESHOLDS, type Threshold } from '../gates/thresholds.js';
import { absolutePath, address as addressRule, bool, duration, field, int, literal, port, safeName, text, type MapRule, type Rule } from './rules.js';
import { backupSchema } from './backup-schema.js';
import { configSchema } from './config-schema.js';

const map = (what: string, fields: MapRule['fields']): MapRule => ({ kind: 'map', what, fields });
const secret: Rule = { kind: 'secret' };
const freeForm: Rule = { kind: 'any' };

/** Names that reach ssh/ClickHouse verbatim: a DNS name, IPv4 or IPv6 address (values.ts). */
const address = addressRule();
const loginName = text({ expected: 'a login name', pattern: /^[A-Za-z_][A-Za-z0-9._-]*\$?$/ });
const hostName = safeName('a host name');

export const jumpSchema = map('a jump host {address, port, user, identity_file, agent}', {
  address: field(address, { required: {} }),
  port: field(port()),
  user: field(loginName),
  identity_file: field(absolutePath(), { as: 'identityFile' }),
  agent: field(bool()),
});

export const sshSchema = map('ssh settings', {
  user: field(loginName, { default: 'root' }),
  port: field(port(), { default: 22 }),
  identity_file: field(absolutePath(), { as: 'identityFile' }),
  agent: field(bool(), { default: false }),
  passphrase: field(secret),
  known_hosts: field(absolutePath(), { as: 'knownHosts', default: '~/.ssh/known_hosts' }),
  trust_on_first_use: field(bool(), { as: 'trustOnFirstUse', default: false }),
  connect_timeout: field(duration('ms', R.connectTimeout), { as: 'connectTimeoutMs', default: '10s' }),
  keepalive_interval: field(duration('ms', R.keepaliveInterval), { as: 'keepaliveIntervalMs', default: '15s' }),
  sudo: field(bool(), { default: false }),
  // Another inventory host's name, or an inline {address, ...}; resolved after all hosts are known.
  jump: field({ kind: 'either', scalar: hostName, map: jumpSchema }),
});

const command = text({ expected: 'a shell command' });

export const clickhouseSchema = map('clickhouse settings', {
  http_port: field(port(), { as: 'httpPort', default: 8123 }),
  tcp_port: field(port(), { as: 'tcpPort', default: 9000 }),
  user: field(text({ expected: 'a ClickHouse user name' }), { default: 'default' }),
  password: field(secret),
  service: field(text({ expected: 'a systemd unit name', pattern: /^[A-Za-z0-9:_.@-]+$/ }), {
    default: 'clickhouse-server',
  }),
  start_command: field(command, { as: 'startCommand' }),
  stop_command: field(command, { as: 'stopCommand' }),
  status_command: field(command, { as: 'statusCommand' }),
  data_dir: field(absolutePath({ dataDir: true }), { as: 'dataDir', default: '/var/lib/clickhouse' }),
  error_log: field(absolutePath(), {
    as: 'errorLog',
    default: '/var/log/clickhouse-server/clickhouse-server.err.log',
  }),
});

// One key per threshold of src/gates/thresholds.ts (defaults: health-gates.md), each checked by
// the same function as its command-line flag (ranges from inventory/values.ts).
function thresholdRule(t: Threshold): Rule {
  if (t.kind === 'switch') return bool();
  return t.kind === 'duration' ? duration('ms', t.range) : int(t.range.min, t.range.max);
}

export const gatesSchema = map(
  'health-gate thresholds',
  Object.fromEntries(THRESHOLDS.map((t) => [t.key, field(thresholdRule(t), { as: t.prop, default: t.default })])),
);

/** The sections a host inherits from `defaults` and may override, merged key by key. */
export const overridableSections = {
  ssh: sshSchema,
  clickhouse: clickhouseSchema,
  gates: gatesSchema,
} as const;

const replicaSchema = map('a replica {host, address, ...}', {
  host: field(hostName, {
    as: 'name',
    required: { message: "a replica needs 'host' (its unique name)", hint: 'add `host: NAME`' },
  }),
  address: field(address),
  connection: field(literal(['ssh', 'local'] as const)),
  replica_name: field(safeName('a replica name'), { as: 'replicaName' }),
  ssh: field(sshSchema),
  clickhouse: field(clickhouseSchema),
  gates: field(gatesSchema),
  vars: field(freeForm),
});

const shardSchema = map('a shard {name, replicas}', {
  name: field(safeName('a shard name')),
  replicas: field(
    {
      kind: 'list',
      what: 'a list of replicas',
      item: replicaSchema,
      min: 1,
      tooFew: { message: 'empty shard: it has no replicas', hint: 'add `replicas: [{host: NAME, address: ADDRESS}]`' },
    },
    { required: { message: 'empty shard: it has no replicas', hint: 'add `replicas: [{host: NAME, address: ADDRESS}]`' } },
  ),
});

const noShards = { message: 'cluster has no shards', hint: 'add `shards: [{replicas: [{host: NAME, address: ADDRESS}]}]`' };
const clusterSchema = map('a cluster {shards}', {
  shards: field({ kind: 'list', what: 'a list of shards', item: shardSchema, min: 1, tooFew: noShards }, { required: noShards }),
});

export const stateSchema = map('state settings', {
  dir: field(absolutePath(), { as: 'stateDir', default: '~/.chops' }),
  log_retention: field(duration('d', R.logRetention), { as: 'logRetentionDays', default: '30d' }),
});

export const inventorySchema = map('a map of version, defaults, state and clusters', {
  version: field(literal([1] as const, 'version must be 1 (the only inventory format this chops reads)'), {
    required: { hint: 'add `version: 1` at the top of the file' },
  }),
  defaults: field(
    map('defaults {ssh, clickhouse, gates, vars}', {
      ssh: field(sshSchema),
      clickhouse: field(clickhouseSchema),
      gates: field(gatesSchema),
      vars: field(freeForm),
    }),
  ),
  state: field(stateSchema),
  backup: field(backupSchema), // src/inventory/backup-schema.ts (chops backup)
  config: field(configSchema), // src/inventory/config-schema.ts (config-push)
  clusters: field(
    {
      kind: 'record',
      what: 'a map of cluster names to clusters',
      key: safeName('a cluster name'),
      value: clusterSchema,
      tooFew: { message: 'no clusters', hint: 'add `clusters: {NAME: {shards: [...]}}`' },
    },
    { required: { hint: 'add `clusters: {NAME: {shards: [...]}}`' } },
  ),
});
