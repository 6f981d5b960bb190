// The ClickHouse lab prepared for backups: the clickhouse-backup test double first on PATH of
// every node (/usr/local/bin), the lab key as the sftp key (root-only), and an inventory variant
// with a `backup:` section whose remote is a real sftp folder on ch4 (/srv/backups/lab/SHARD).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { labExec } from '../lab/lab.js';
import { inventoryVariant } from './inventory.js';
import { type TestLab, labSh } from './lab.js';
import { REPO } from './process.js';

export const DOUBLE = path.join(REPO, 'test/doubles/clickhouse-backup');
export const SFTP_HOST = 'ch4';

export async function prepareBackupLab(lab: TestLab, backup: Record<string, unknown> = {}): Promise<string> {
  const key = readFileSync(lab.lab.identityFile, 'utf8');
  const dbl = readFileSync(DOUBLE, 'utf8');
  await Promise.all(
    lab.nodes.map(async (n) => {
      await labExec(lab.lab, n.name, 'cat > /usr/local/bin/clickhouse-backup && chmod 0755 /usr/local/bin/clickhouse-backup', { input: dbl });
      await labExec(lab.lab, n.name, 'mkdir -p /root/.ssh && umask 077 && cat > /root/.ssh/backup_key', { input: key });
    }),
  );
  const sftp = lab.nodes.find((n) => n.name === SFTP_HOST)!;
  return inventoryVariant(lab.inventoryPath, 'backup', (doc) => {
    // the backup runs as ClickHouse user ops, whose password is a secret file (0600)
    doc.defaults.clickhouse.user = 'ops';
    doc.defaults.clickhouse.password = { file: lab.lab.clickhouseOps!.passwordFile };
    doc.backup = {
      schedule: { full: '30 20 * * 6', diff: '0 * * * *' },
      stagger: '10m',
      keep_local: 1,
      keep_remote: 4,
      lock_wait: '3s',
      command_timeout: '2m',
      remote: { type: 'sftp', address: sftp.address, username: 'root', key: '/root/.ssh/backup_key', path: '/srv/backups/{cluster}/{shard}' },
      ...backup,
    };
  });
}

/** Files under the remote folder of a shard, as the sftp server (ch4) has them. */
export async function remoteNames(lab: TestLab, shard: string): Promise<string[]> {
  return (await labSh(lab, SFTP_HOST, `ls -1 /srv/backups/lab/${shard} 2>/dev/null || true`)).split('\n').filter(Boolean);
}
