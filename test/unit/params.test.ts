import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseParams } from '../../src/engine/params.js';
import { confirmDestructive } from '../../src/commands/confirm.js';
import { UsageError } from '../../src/errors.js';
import { parseDuration } from '../../src/duration.js';
import exec from '../../playbooks/exec.js';

test('playbook parameters: typed, defaults, unknown and missing ones refused with exit code 2', () => {
  const p = parseParams(exec, { cmd: 'uptime', 'reboot-timeout': '90s' });
  assert.deepEqual(p.cmd, ['uptime']);
  assert.equal(p.scope, 'each');
  assert.equal(p['reboot-timeout'], 90_000);
  assert.throws(
    () => parseParams(exec, {}),
    (e: any) => e instanceof UsageError && e.exitCode === 2 && /needs --cmd/.test(e.message),
  );
  assert.throws(() => parseParams(exec, { cmd: 'x', comand: 'y' }), /no parameter --comand/);
  assert.throws(() => parseParams(exec, { cmd: 'x', scope: 'sometimes' }), /one of each, rolling, once/);
  assert.throws(() => parseParams(exec, { cmd: 'x', 'reboot-timeout': '10 parsecs' }), /duration/);
});

test('durations need a unit', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('10'), undefined);
});

test('destructive steps: refused without a terminal unless --yes; nothing to confirm otherwise', async () => {
  const phases = [{ name: 'move data', scope: 'rolling' as const, steps: [{ name: 'mkfs.ext4', destructive: true, run: async () => {} }] }];
  const hosts: any[] = [{ name: 'h1' }];
  const wasTTY = process.stdin.isTTY;
  (process.stdin as any).isTTY = false;
  try {
    await assert.rejects(
      confirmDestructive(phases, hosts, {}, 'move-data'),
      (e: any) => e instanceof UsageError && /destructive/.test(e.message) && /--yes/.test(e.hint ?? ''),
    );
    await confirmDestructive(phases, hosts, { yes: true }, 'move-data');
    await confirmDestructive([{ ...phases[0], steps: [{ name: 'safe', run: async () => {} }] }], hosts, {}, 'x');
  } finally {
    (process.stdin as any).isTTY = wasTTY;
  }
});

test('multi-word playbook flags arrive in kebab-case whatever form the parser gives them', async () => {
  const { playbookArgs } = await import('../../src/commands/common.js');
  assert.deepEqual(playbookArgs({ rebootTimeout: '60s', cmd: 'x', parallelShards: 2, inventory: 'i' }), { 'reboot-timeout': '60s', cmd: 'x' });
  assert.deepEqual(playbookArgs({ 'reboot-timeout': '60s', rebootTimeout: '60s' }), { 'reboot-timeout': '60s' });
});

test('disruptive steps (stopping a server) are confirmed like destructive ones: refused without a terminal unless --yes', async () => {
  const phases = [{ name: 'restart replicas', scope: 'rolling' as const, steps: [{ name: 'stop clickhouse-server', disruptive: true, run: async () => {} }] }];
  const wasTTY = process.stdin.isTTY;
  (process.stdin as any).isTTY = false;
  try {
    await assert.rejects(
      confirmDestructive(phases, [{ name: 'h1' }] as any, {}, 'rolling-restart'),
      (e: any) =>
        e instanceof UsageError &&
        e.exitCode === 2 &&
        /disruptive steps/.test(e.message) &&
        /stop clickhouse-server/.test(e.message) &&
        /--yes/.test(e.hint ?? ''),
    );
    await confirmDestructive(phases, [{ name: 'h1' }] as any, { yes: true }, 'rolling-restart');
  } finally {
    (process.stdin as any).isTTY = wasTTY;
  }
});
