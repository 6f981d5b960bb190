// No secret in any log: a ClickHouse password read from a root-only file is used for real (the
// gates of `exec --rolling` query the servers as user `ops`), and a command echoes it on purpose.
// It must not appear in the terminal output, the JSON events, the run log or the state file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { labUp, labExec, type Lab } from '../lab/lab.js';
import { chops } from '../support/cli.js';

let lab: Lab;
before(async () => {
  lab = await labUp({ name: 'chsecret', hosts: 4, clickhouse: true });
});
after(async () => {
  await lab?.down();
});

test('a secret read by chops never reaches output, events, run log or state', async () => {
  const pwFile = join(lab.dir, 'ops-password');
  copyFileSync(lab.clickhouseOps!.passwordFile, pwFile);
  chmodSync(pwFile, 0o600);
  const secret = readFileSync(pwFile, 'utf8').trim();
  assert.ok(secret.length >= 6);
  const data = YAML.parse(readFileSync(lab.inventoryPath, 'utf8'));
  data.defaults.clickhouse.user = 'ops';
  data.defaults.clickhouse.password = { file: pwFile };
  const inv = join(lab.dir, 'inventory-secret.yml');
  writeFileSync(inv, YAML.stringify(data));

  // a world-readable secret file is refused before anything connects
  chmodSync(pwFile, 0o644);
  const loose = await chops(['run', 'exec', '-i', inv, '--rolling', '--limit', 'ch1,ch2', '--cmd', 'true', '--output', 'plain', '--yes']);
  assert.notEqual(loose.code, 0);
  assert.match(loose.stderr, /chmod 600/);
  chmodSync(pwFile, 0o600);

  // the command reads the secret on the host itself (it is not in chops' parameters)
  await labExec(lab, 'ch1', `printf %s '${secret}' > /root/pw`);
  await labExec(lab, 'ch2', `printf %s '${secret}' > /root/pw`);
  const echo = 'echo "the password is $(cat /root/pw)"';
  for (const output of [['--output', 'plain'], ['--json']]) {
    const r = await chops(['run', 'exec', '-i', inv, '--rolling', '--limit', 'ch1,ch2', '--cmd', echo, ...output, '--yes']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /the password is \*\*\*/, 'the command ran and its output was masked');
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `secret in ${output.join(' ')} output`);
  }
  const runsDir = join(lab.dir, 'state', 'runs');
  for (const id of readdirSync(runsDir)) {
    for (const f of ['run.log', 'state.yml']) {
      const text = readFileSync(join(runsDir, id, f), 'utf8');
      assert.ok(!text.includes(secret), `secret in ${id}/${f}`);
    }
  }
  const log = readFileSync(join(runsDir, readdirSync(runsDir).sort().at(-1)!, 'run.log'), 'utf8');
  assert.match(log, /the password is \*\*\*/);
});
