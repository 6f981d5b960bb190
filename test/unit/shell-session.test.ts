// The persistent shell's framing (src/transport/shell-session.ts) on a scripted channel: end
// tokens in either order, output after a token (a background job) kept out of every result,
// a ping that runs nothing, and a shell that ends on its own telling why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ShellSession } from '../../src/transport/shell-session.js';

class FakeChannel extends EventEmitter {
  stderr = new EventEmitter();
  written: string[] = [];
  write(s: string): boolean {
    this.written.push(s);
    return true;
  }
  end(): void {}
  close(): void {}
  /** The end token of the last script written. */
  token(): string {
    const m = /printf '%s\\n' (__chops_end_\w+__) >&2/.exec(this.written.at(-1) ?? '');
    assert.ok(m, `no end token in ${this.written.at(-1)}`);
    return m[1];
  }
}

async function session(): Promise<{ sh: ShellSession; ch: FakeChannel }> {
  const ch = new FakeChannel();
  const client = { exec: (_cmd: string, cb: (err: Error | undefined, ch: FakeChannel) => void) => cb(undefined, ch) };
  const sh = await ShellSession.open(client as never, false);
  assert.ok(sh);
  return { sh, ch };
}

test('a result is what came before each end token; what follows a token belongs to no command', async () => {
  const { sh, ch } = await session();
  const p = sh.run('echo out; echo err >&2');
  const tok = ch.token();
  ch.emit('data', Buffer.from('out\n'));
  ch.stderr.emit('data', Buffer.from(`err\n${tok}\n`));
  ch.stderr.emit('data', Buffer.from('late stderr of a background job\n'));
  ch.emit('data', Buffer.from(`${tok} 3\nlate stdout\n`));
  assert.deepEqual(await p, { stdout: 'out\n', stderr: 'err\n', code: 3 });
  const q = sh.run('true');
  const tok2 = ch.token();
  assert.notEqual(tok2, tok, 'each command has its own token');
  ch.stderr.emit('data', Buffer.from(`${tok2}\n`));
  ch.emit('data', Buffer.from(`${tok2} 0\n`));
  assert.deepEqual(await q, { stdout: '', stderr: '', code: 0 }, 'nothing of the earlier command leaks into the next');
});

test('a token split across chunks is found; a ping runs nothing', async () => {
  const { sh, ch } = await session();
  const p = sh.ping(5000);
  assert.doesNotMatch(ch.written.at(-1)!, /eval|\(/, 'a ping starts no subshell');
  const tok = ch.token();
  ch.stderr.emit('data', Buffer.from(tok.slice(0, 10)));
  ch.stderr.emit('data', Buffer.from(`${tok.slice(10)}\n`));
  ch.emit('data', Buffer.from(`${tok.slice(0, 5)}`));
  ch.emit('data', Buffer.from(`${tok.slice(5)} 0\n`));
  assert.deepEqual(await p, { stdout: '', stderr: '', code: 0 });
});

test('a shell that ends on its own says why: its stderr and its exit status', async () => {
  const { sh, ch } = await session();
  ch.stderr.emit('data', Buffer.from('sudo: a password is required\n'));
  ch.emit('exit', 1);
  ch.emit('close');
  assert.equal(sh.ended, true);
  assert.equal(sh.available, false);
  assert.deepEqual(sh.exitStatus, { code: 1, signal: undefined });
  assert.match(sh.strayStderr, /password is required/);
});
