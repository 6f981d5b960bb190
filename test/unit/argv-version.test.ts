// A playbook's own --version (rolling-upgrade) next to chops' --version flag (src/commands/argv.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PLAYBOOK_VERSION_FLAG, normaliseArgv, rawFlags } from '../../src/commands/argv.js';
import { playbookArgs } from '../../src/commands/common.js';

const node = ['node', 'chops'];

test('--version after run/plan/graph is the playbook parameter; alone it is chops --version', () => {
  for (const cmd of ['run', 'plan', 'graph']) {
    for (const form of [['--version', '18.16.1+ds-7.4~chops1'], ['--version=18.16.1+ds-7.4~chops1']]) {
      const argv = normaliseArgv([...node, cmd, 'rolling-upgrade', ...form, '--yes']);
      assert.deepEqual(argv.slice(2), [cmd, 'rolling-upgrade', `--${PLAYBOOK_VERSION_FLAG}=18.16.1+ds-7.4~chops1`, '--yes']);
      const raw = rawFlags(argv.slice(2));
      assert.deepEqual(playbookArgs(Object.fromEntries([...raw].map(([k, v]) => [k, v[0]]))), { version: '18.16.1+ds-7.4~chops1' });
    }
  }
  assert.deepEqual(normaliseArgv([...node, '--version']).slice(2), ['--version']);
  // without a value: the playbook says it needs one (not chops' version)
  assert.deepEqual(normaliseArgv([...node, 'run', 'rolling-upgrade', '--version', '--yes']).slice(2), [
    'run',
    'rolling-upgrade',
    `--${PLAYBOOK_VERSION_FLAG}`,
    '--yes',
  ]);
  // other commands keep chops' flag
  assert.deepEqual(normaliseArgv([...node, 'status', '--version']).slice(2), ['status', '--version']);
});
