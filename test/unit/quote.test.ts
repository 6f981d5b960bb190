// The one quoting function, against a real POSIX shell: every hostile value must arrive as
// exactly one literal argument.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { shq, sh, raw } from '../../src/quote.js';
import { wrapCommand } from '../../src/transport/wrap.js';
import { ARGV_SAFE as HOSTILE } from '../support/hostile.js';

/** Print each argument on its own, NUL-separated, as the shell received it. */
function argsSeenBy(shell: string, cmd: string): string[] {
  const out = execFileSync(shell, ['-c', cmd], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

for (const shell of ['/bin/sh', '/bin/bash']) {
  test(`shq: hostile values reach ${shell} as one literal word`, () => {
    for (const v of HOSTILE) {
      const seen = argsSeenBy(shell, `printf '%s\\0' ${shq(v)}`);
      assert.deepEqual(seen, [v], `value ${JSON.stringify(v)}`);
    }
  });
}

test('sh`` quotes every interpolation and spreads arrays as several words', () => {
  const cmd = sh`printf '%s\\0' ${HOSTILE}`;
  assert.deepEqual(argsSeenBy('/bin/sh', cmd), HOSTILE);
});

test('raw() is the only way to insert unquoted text', () => {
  assert.equal(sh`ls ${raw('-la')} ${'-la'}`, "ls -la '-la'");
  assert.equal(sh`echo ${'a b'}`, "echo 'a b'");
});

test('safe words stay readable, NUL is refused', () => {
  assert.equal(shq('/var/lib/clickhouse'), '/var/lib/clickhouse');
  assert.equal(shq('clickhouse-server'), 'clickhouse-server');
  assert.equal(shq(''), "''");
  assert.equal(shq(22), '22');
  assert.throws(() => shq('a\0b'), /NUL/);
});

test('wrapCommand survives a second shell layer (sh -c inside the login shell)', () => {
  for (const v of HOSTILE) {
    const inner = sh`printf '%s\\0' ${v}`;
    // What sshd does: the login shell parses the wire string, which runs sh -c INNER.
    const seen = argsSeenBy('/bin/bash', wrapCommand(inner));
    assert.deepEqual(seen, [v]);
  }
  assert.match(wrapCommand('true', { sudo: true, timeoutMs: 1500 }), /^sudo -n -- timeout -k 5 2 sh -c true <\/dev\/null$/);
  assert.equal(wrapCommand('cat', { stdin: true }), 'sh -c cat');
});

test('no hostile value executed anything', () => {
  assert.throws(() => execFileSync('test', ['-e', '/tmp/chops-pwned']));
});
