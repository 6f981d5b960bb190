// The `backup:` section of the inventory (issue 11): schedules, the active replica per shard,
// retention, deadlines and the remote storage. Secrets (remote password, S3 keys) are
// references like every secret in the inventory; they are read only by `chops backup install`.
import { absolutePath, bool, duration, field, int, literal, port, safeName, text, type MapRule } from './rules.js';
import type { SecretRef } from './secret-ref.js';
import type { SchemaWalker } from './validate.js';
import type { SourcePos } from './problems.js';

/** The one declaration of the choices and shapes the templates render (templates/backup/types.ts). */
export const COMPRESSION_FORMATS = ['tar', 'gzip', 'zstd', 'none'] as const;
export type CompressionFormat = (typeof COMPRESSION_FORMATS)[number];
export const LOG_FREQUENCIES = ['daily', 'weekly', 'monthly'] as const;
export type LogFrequency = (typeof LOG_FREQUENCIES)[number];

/** The remote storage: SECRET is a reference in the inventory, the value read from it in a template. */
export interface SftpRemote<Secret = string> {
  type: 'sftp';
  address: string;
  port: number;
  username: string;
  /** Secret (absent / empty when a key is used). */
  password: Secret;
  /** Path of a private key on the node (root-only), or "" for password login. */
  key: string;
  path: string;
  compressionFormat: CompressionFormat;
}

export interface S3Remote<Secret = string> {
  type: 's3';
  bucket: string;
  endpoint: string;
  region: string;
  path: string;
  accessKey: Secret;
  secretKey: Secret;
  compressionFormat: CompressionFormat;
}

export type RemoteStorage<Secret = string> = SftpRemote<Secret> | S3Remote<Secret>;

/** What the agent is told about retention and deadlines, as the inventory sets it. */
export interface BackupRetention {
  keepLocal: number;
  keepRemote: number;
  /** A FULL at least this often (seconds): a DIFF whose newest FULL is older becomes a FULL. */
  fullIntervalSeconds: number;
  /** At most this many DIFFs behind a FULL. */
  maxChain: number;
  lockWaitSeconds: number;
  commandTimeoutSeconds: number;
}

const map = (what: string, fields: MapRule['fields']): MapRule => ({ kind: 'map', what, fields });
const cron = text({ expected: 'a five-field cron expression ("30 20 * * 6")' });
const plain = (expected: string) => text({ expected, pattern: /^[^\s'"\\`$;&|<>]+$/, hint: 'no spaces, quotes or shell characters' });

export const backupSchema = map('backup settings {schedule, remote, ...}', {
  enabled: field(bool()),
  schedule: field(map('backup schedules {full, diff}', { full: field(cron), diff: field(cron) })),
  stagger: field(duration('s', { allowZero: true })),
  active: field({
    kind: 'record',
    what: 'a map of shard names to the host that backs the shard up',
    key: safeName('a shard name'),
    value: safeName('a host name'),
  }),
  keep_local: field(int(0, 1000)),
  keep_remote: field(int(0, 100000)),
  full_interval: field(duration('s')),
  max_chain: field(int(1, 10000)),
  lock_wait: field(duration('s', { allowZero: true })),
  command_timeout: field(duration('s')),
  max_age: field(duration('s')),
  max_lock_hold: field(duration('s')),
  log_rotate: field(map('log rotation {frequency, keep}', { frequency: field(literal(LOG_FREQUENCIES)), keep: field(int(1, 1000)) })),
  remote: field(
    map('remote storage {type, ...}', {
      type: field(literal(['sftp', 's3'] as const), { required: { hint: 'add `type: sftp` or `type: s3`' } }),
      address: field(plain('an sftp server address')),
      port: field(port()),
      username: field(plain('an sftp login name')),
      password: field({ kind: 'secret' }),
      key: field(absolutePath()),
      path: field(text({ expected: 'a remote path' })),
      bucket: field(plain('an S3 bucket')),
      endpoint: field(plain('an S3 endpoint URL')),
      region: field(plain('an S3 region')),
      access_key: field({ kind: 'secret' }),
      secret_key: field({ kind: 'secret' }),
      compression_format: field(literal(COMPRESSION_FORMATS)),
    }),
    { required: { hint: 'add `remote: {type: sftp, address: ..., path: ...}`' } },
  ),
});

export interface BackupSettings extends BackupRetention {
  enabled: boolean;
  schedule: { full: string; diff: string };
  /** file:line:col of each schedule, for "invalid cron expression" errors. */
  scheduleWhere: { full: string; diff: string };
  staggerSeconds: number;
  /** shard name -> host name; shards not named use their first replica. */
  active: Record<string, string>;
  maxAgeSeconds: number;
  maxLockHoldSeconds: number;
  logRotate: { frequency: LogFrequency; keep: number };
  remote: SftpRemote<SecretRef | undefined> | S3Remote<SecretRef>;
}

type Raw = Record<string, any>;

/** Typed settings with defaults; problems (missing fields of the remote's type, unknown hosts) go to the walker. */
export function buildBackupSettings(
  raw: Raw | undefined,
  walker: SchemaWalker,
  file: string,
  hosts: { name: string; shardName: string }[],
): BackupSettings | undefined {
  if (!raw) return undefined;
  const at = (o: object | undefined, fallback: SourcePos = { line: 1, col: 1 }) => (o && walker.positions.get(o)) || fallback;
  const pos = at(raw);
  const where = (o: object | undefined) => {
    const p = at(o, pos);
    return `${file}:${p.line}:${p.col}`;
  };
  const r: Raw = raw.remote ?? {};
  const need = (keys: string[]) => {
    for (const k of keys)
      if (r[k] === undefined)
        walker.add(`backup.remote.${k}`, at(r, pos), `missing: remote storage type ${r.type} needs ${k}`, `add \`${k}: ...\` under backup.remote`);
  };
  if (r.type === 'sftp') {
    need(['address', 'path']);
    if (r.key === undefined && r.password === undefined)
      walker.add(
        'backup.remote',
        at(r, pos),
        'an sftp remote needs a key (path on the node) or a password (secret reference)',
        'add `key: /root/.ssh/backup_key` or `password: {env: NAME}`',
      );
  } else if (r.type === 's3') need(['bucket', 'access_key', 'secret_key']);
  const active: Record<string, string> = {};
  for (const e of (raw.active ?? []) as { name: string; at: SourcePos; value: string }[]) {
    const h = hosts.find((x) => x.name === e.value);
    if (!h) walker.add(`backup.active.${e.name}`, e.at, `no host named "${e.value}" in this inventory`, 'name a replica of that shard');
    else if (h.shardName !== e.name)
      walker.add(`backup.active.${e.name}`, e.at, `host "${e.value}" is in shard ${h.shardName}, not ${e.name}`, 'name a replica of that shard');
    active[e.name] = e.value;
  }
  const sched: Raw = raw.schedule ?? {};
  const cf = r.compression_format ?? 'tar';
  return {
    enabled: raw.enabled ?? true,
    schedule: { full: sched.full ?? '30 20 * * 6', diff: sched.diff ?? '0 * * * *' },
    scheduleWhere: { full: `${where(sched)} (backup.schedule.full)`, diff: `${where(sched)} (backup.schedule.diff)` },
    staggerSeconds: raw.stagger ?? 0,
    active,
    keepLocal: raw.keep_local ?? 1,
    keepRemote: raw.keep_remote ?? 14,
    fullIntervalSeconds: raw.full_interval ?? 7 * 86400,
    maxChain: raw.max_chain ?? 48,
    lockWaitSeconds: raw.lock_wait ?? 600,
    commandTimeoutSeconds: raw.command_timeout ?? 4 * 3600,
    maxAgeSeconds: raw.max_age ?? 36 * 3600,
    maxLockHoldSeconds: raw.max_lock_hold ?? 4 * 3600,
    logRotate: { frequency: raw.log_rotate?.frequency ?? 'weekly', keep: raw.log_rotate?.keep ?? 14 },
    remote:
      r.type === 's3'
        ? {
            type: 's3',
            bucket: r.bucket,
            endpoint: r.endpoint ?? '',
            region: r.region ?? '',
            path: r.path ?? '',
            accessKey: r.access_key,
            secretKey: r.secret_key,
            compressionFormat: cf,
          }
        : {
            type: 'sftp',
            address: r.address,
            port: r.port ?? 22,
            username: r.username ?? 'root',
            password: r.password,
            key: r.key ?? '',
            path: r.path,
            compressionFormat: cf,
          },
  };
}
