// Backup templates, schedules and the agent's list parser (run through real sh on fixtures of
// every clickhouse-backup list layout), shellcheck of the rendered agent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { renderAgent } from '../../templates/backup/agent.js';
import { AGENT_BODY } from '../../templates/backup/agent-body.js';
import { renderBackupConfig } from '../../templates/backup/config-yml.js';
import { renderCron, cronCommand } from '../../templates/backup/cron.js';
import { renderLogrotate } from '../../templates/backup/logrotate.js';
import { AGENT_PATHS } from '../../templates/backup/paths.js';
import type { AgentParams } from '../../templates/backup/types.js';
import { nextRuns, staggerCron, validateCron } from '../../tasks/backup/schedule.js';
import { parseAgentList } from '../../tasks/backup/judge.js';
import { UsageError } from '../../src/errors.js';

const FIX = path.resolve(import.meta.dirname, '../fixtures/clickhouse-backup');
const params: AgentParams = {
  paths: AGENT_PATHS,
  hostName: 'ch1',
  cluster: 'lab',
  shard: '01',
  enabled: true,
  activeHost: 'ch1',
  namePrefix: '',
  keepLocal: 1,
  keepRemote: 14,
  fullIntervalSeconds: 604800,
  maxChain: 48,
  lockWaitSeconds: 600,
  commandTimeoutSeconds: 14400,
  listTimeoutSeconds: 300,
};

function agentFile(p: AgentParams = params): { file: string; done(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'chops-agent-'));
  const file = path.join(dir, 'agent');
  writeFileSync(file, renderAgent(p), { mode: 0o755 });
  return { file, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('the agent body has no template substitution in it (what is installed is what is written)', () => {
  assert.ok(!AGENT_BODY.includes('${'));
  assert.match(renderAgent(params), /^#!\/bin\/sh\n/);
  assert.match(renderAgent({ ...params, hostName: "o'neil" }), /^HOST_NAME='o'\\''neil'$/m);
});

test('the rendered agent is clean under shellcheck (POSIX sh)', async () => {
  const a = agentFile({ ...params, enabled: false, activeHost: 'ch2' });
  try {
    const r = await execa('shellcheck', ['-s', 'sh', '-S', 'info', a.file], { reject: false });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  } finally {
    a.done();
  }
});

for (const [layout, file] of [
  ['text-v1', 'list-text-v1.txt'],
  ['text-v2', 'list-text-v2.txt'],
  ['text-v3', 'list-text-v3.txt'],
  ['json', 'list-json.json'],
] as const) {
  test(`agent list parser: ${layout} layout → names, dates, sizes, bases, broken, chains`, async () => {
    const a = agentFile();
    try {
      const r = await execa('sh', [a.file, 'parse-list', layout], { input: readFileSync(path.join(FIX, file)), reject: false });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout + '\n', readFileSync(path.join(FIX, 'list-expected.tsv'), 'utf8'));
      const parsed = parseAgentList(r.stdout);
      assert.deepEqual(
        parsed.filter((b) => b.good).map((b) => b.name),
        ['full-20261128T203000', 'diff-20261128T210000', 'diff-20261128T230000'],
      );
      assert.equal(parsed.find((b) => b.name === 'diff-orphan')!.chain, -1);
    } finally {
      a.done();
    }
  });
}

test('agent list parser refuses what it does not understand (never skips a line)', async () => {
  const a = agentFile();
  try {
    const cases: Array<[string, string]> = [
      ['text-v3', 'full-1  2026-11-28 20:30:05  remote  all:1KiB\nsomething else entirely\n'],
      ['text-v2', readFileSync(path.join(FIX, 'list-text-v3.txt'), 'utf8')], // wrong date layout for the version
      ['text-v1', 'x  12QB  28/11/2026 20:30:05  remote  tar\n'],
      ['json', '{"BackupName": "x"}'],
      ['json', '[{"BackupName": "x", "CreationDate": "2026-11-28T20:30:05Z", "Size": {"all": 1}}]'],
      ['yaml', 'x\n'],
    ];
    for (const [layout, input] of cases) {
      const r = await execa('sh', [a.file, 'parse-list', layout], { input, reject: false });
      assert.notEqual(r.exitCode, 0, `${layout} accepted ${JSON.stringify(input)}: ${r.stdout}`);
    }
    const empty = await execa('sh', [a.file, 'parse-list', 'json'], { input: 'null\n' });
    assert.equal(empty.stdout, '');
  } finally {
    a.done();
  }
});

test('config.yml: sftp and s3, credentials quoted, tool retention off', () => {
  const sftp = renderBackupConfig({
    remote: { type: 'sftp', address: 'b.example', port: 22, username: 'bk', password: 'p"w\\d', key: '', path: '/srv/b/01', compressionFormat: 'tar' },
    clickhouse: { host: 'localhost', port: 9000, username: 'ops', password: 's3cr3t', timeout: '5m' },
    logLevel: 'info',
  });
  assert.match(sftp, /^general:\n {2}remote_storage: sftp\n {2}backups_to_keep_local: 0/m);
  assert.match(sftp, /^ {2}password: "s3cr3t"$/m);
  assert.match(sftp, /^ {2}password: "p\\"w\\\\d"$/m);
  const s3 = renderBackupConfig({
    remote: {
      type: 's3',
      bucket: 'bk',
      endpoint: 'https://s3.example',
      region: 'eu-1',
      path: 'ch/01',
      accessKey: 'AK',
      secretKey: 'SK',
      compressionFormat: 'zstd',
    },
    clickhouse: { host: 'localhost', port: 9000, username: 'default', password: '', timeout: '5m' },
    logLevel: 'info',
  });
  assert.match(s3, /^s3:\n {2}access_key: "AK"\n {2}secret_key: "SK"\n {2}bucket: "bk"/m);
  assert.doesNotMatch(s3, /sftp:/);
});

test('cron.d: schedules, no secret, disabled replicas commented out; logrotate', () => {
  const on = renderCron({ paths: AGENT_PATHS, full: '30 20 * * 6', diff: '0 * * * *', enabled: true, disabledReason: '' });
  assert.match(on, /^30 20 \* \* 6 root \/usr\/local\/sbin\/chops-backup-agent full$/m);
  assert.match(on, /^0 \* \* \* \* root \/usr\/local\/sbin\/chops-backup-agent diff$/m);
  assert.match(on, /^SHELL=\/bin\/sh$/m);
  assert.equal(cronCommand(AGENT_PATHS, 'diff'), '/usr/local/sbin/chops-backup-agent diff');
  const off = renderCron({
    paths: AGENT_PATHS,
    full: '30 20 * * 6',
    diff: '0 * * * *',
    enabled: false,
    disabledReason: 'ch1 is the active replica of shard 01',
  });
  assert.doesNotMatch(off, /^[0-9*]/m);
  assert.match(off, /DISABLED on this node: ch1 is the active replica/);
  const lr = renderLogrotate({ paths: AGENT_PATHS, frequency: 'weekly', rotate: 14 });
  assert.match(lr, /^\/var\/log\/clickhouse-backup\/\*\.log \{\n {4}weekly\n {4}rotate 14\n {4}compress/m);
  assert.throws(() => renderLogrotate({ paths: AGENT_PATHS, frequency: 'weekly', rotate: 0 }));
});

test('cron validation: cron-parser plus what Vixie cron does not run; stagger; next runs in a time zone', () => {
  for (const ok of ['30 20 * * 6', '0 * * * *', '*/15 1-5 * * mon-fri', '0 0 1 jan *']) validateCron(ok, 'inv.yml:3:5');
  for (const [bad, why] of [
    ['61 * * * *', /61/],
    ['* * *', /5 fields, found 3/],
    ['*/5 * * * * *', /found 6/],
    ['0 0 L * *', /L, W/],
    ['0 25 * * *', /25/],
    ['', /found/],
  ] as const) {
    assert.throws(
      () => validateCron(bad, 'inv.yml:3:5 (backup.schedule.full)'),
      (e: unknown) =>
        e instanceof UsageError &&
        e.exitCode === 2 &&
        why.test(e.message) &&
        e.message.includes('inv.yml:3:5 (backup.schedule.full)') &&
        e.message.includes(JSON.stringify(bad)),
    );
  }
  assert.equal(staggerCron('0 * * * *', 10, 'w'), '10 * * * *');
  assert.equal(staggerCron('30 20 * * 6', 40, 'w'), '10 21 * * 6');
  assert.throws(() => staggerCron('*/5 * * * *', 10, 'w'), /not a single number/);
  assert.throws(() => staggerCron('50 * * * *', 20, 'w'), /past the hour/);
  const from = new Date('2026-12-01T21:00:00Z');
  assert.deepEqual(nextRuns('30 20 * * 6', 'Europe/Berlin', 3, from), [
    'Sat 2026-12-05 20:30 Europe/Berlin',
    'Sat 2026-12-12 20:30 Europe/Berlin',
    'Sat 2026-12-19 20:30 Europe/Berlin',
  ]);
  assert.deepEqual(nextRuns('0 * * * *', 'UTC', 2, from), ['Tue 2026-12-01 22:00 UTC', 'Tue 2026-12-01 23:00 UTC']);
});
