// clickhouse-backup's config.yml (keys from ../shared/notes/clickhouse-backup-contract.md).
// It holds the ClickHouse password and the remote storage secrets: installed 0600 root only.
// The tool's own retention is off (0): its local retention ignores chains, so the agent applies
// keep_local/keep_remote itself and never deletes a base a kept backup needs.
import type { BackupConfigParams } from './types.js';

/** A YAML double-quoted scalar (JSON strings are valid YAML). */
const q = (s: string): string => JSON.stringify(s);

export function renderBackupConfig(p: BackupConfigParams): string {
  const r = p.remote;
  const lines = [
    '# clickhouse-backup config, written by `chops backup install` (0600 root: it holds secrets)',
    'general:',
    `  remote_storage: ${r.type}`,
    '  backups_to_keep_local: 0   # retention is done by the agent (chain-aware)',
    '  backups_to_keep_remote: 0',
    `  log_level: ${p.logLevel}`,
    'clickhouse:',
    `  username: ${q(p.clickhouse.username)}`,
    `  password: ${q(p.clickhouse.password)}`,
    `  host: ${q(p.clickhouse.host)}`,
    `  port: ${p.clickhouse.port}`,
    `  timeout: ${q(p.clickhouse.timeout)}`,
  ];
  if (r.type === 'sftp') {
    lines.push(
      'sftp:',
      `  address: ${q(r.address)}`,
      `  port: ${r.port}`,
      `  username: ${q(r.username)}`,
      `  password: ${q(r.password)}`,
      `  key: ${q(r.key)}`,
      `  path: ${q(r.path)}`,
      `  compression_format: ${r.compressionFormat}`,
    );
  } else {
    lines.push(
      's3:',
      `  access_key: ${q(r.accessKey)}`,
      `  secret_key: ${q(r.secretKey)}`,
      `  bucket: ${q(r.bucket)}`,
      `  endpoint: ${q(r.endpoint)}`,
      `  region: ${q(r.region)}`,
      `  path: ${q(r.path)}`,
      `  compression_format: ${r.compressionFormat}`,
    );
  }
  return lines.join('\n') + '\n';
}
