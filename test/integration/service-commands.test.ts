// Hosts without systemd: the inventory's start_command / stop_command / status_command replace
// systemctl for the ClickHouse service, in plan, in run and in status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { labUp, labExec, type Lab } from '../lab/lab.js';
import { chops } from '../support/cli.js';

let lab: Lab;
before(async () => {
  lab = await labUp({ name: 'chsvc', hosts: 4, clickhouse: true });
});
after(async () => {
  await lab?.down();
});

test('custom service commands are what plan shows and run uses', async () => {
  const data = YAML.parse(readFileSync(lab.inventoryPath, 'utf8'));
  Object.assign(data.defaults.clickhouse, {
    stop_command: 'touch /root/custom-stop && systemctl stop clickhouse-server',
    start_command: 'touch /root/custom-start && systemctl start clickhouse-server',
    status_command: 'pidof clickhouse-server',
  });
  const inv = join(lab.dir, 'inventory-custom.yml');
  writeFileSync(inv, YAML.stringify(data));

  const plan = await chops(['plan', 'rolling-restart', '-i', inv, '--limit', 'ch1']);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /\$ touch \/root\/custom-stop && systemctl stop clickhouse-server/);
  assert.match(plan.stdout, /\$ touch \/root\/custom-start && systemctl start clickhouse-server/);
  assert.doesNotMatch(plan.stdout, /\$ systemctl stop clickhouse-server/);

  const run = await chops(['run', 'rolling-restart', '-i', inv, '--limit', 'ch1', '--output', 'plain', '--yes']);
  assert.equal(run.code, 0, run.stderr + run.stdout);
  assert.equal((await labExec(lab, 'ch1', 'ls /root/custom-stop /root/custom-start')).code, 0);
  assert.notEqual((await labExec(lab, 'ch2', 'ls /root/custom-stop', { check: false })).code, 0, 'only the limited host was touched');

  const status = await chops(['status', '-i', inv, '--json']);
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).healthy, true);
});
