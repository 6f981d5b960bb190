// The live terminal display (src/engine/live.ts): a frame never taller than the screen nor
// wider than it, a large fan-out summarised with counts, finished work written once, control
// characters from command output neutralised, a terminal without a size drawn as 80×24.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { LiveDisplay, sanitize } from '../../src/engine/live.js';
import { sleep } from '../support/process.js';

process.env.NO_COLOR = '1';

/** A fake terminal stream: every write, and the size it reports. */
function term(cols: number, rows: number) {
  const writes: string[] = [];
  const w = new Writable({
    write(c, _e, cb) {
      writes.push(c.toString());
      cb();
    },
  }) as Writable & { columns: number; rows: number };
  w.columns = cols;
  w.rows = rows;
  return { w: w as unknown as NodeJS.WriteStream, writes };
}

/** The lines of the last frame drawn (the text after the last erase). */
function lastFrame(writes: string[]): string[] {
  const all = writes.join('');
  const at = all.lastIndexOf('\x1b[J');
  return all
    .slice(at + 3)
    .replace(/\x1b\[\?25[hl]/g, '')
    .split('\n')
    .filter(Boolean);
}

const hosts = (n: number) => Array.from({ length: n }, (_, i) => `h${i + 1}`);
const shape = (n: number) => [{ name: 'commands', scope: 'each host in parallel', steps: ['#1 $ true', '#2 $ uname -a'], hosts: hosts(n) }];

test('200 hosts running: one summary line with counts, a screenful of running hosts at most, no line wider than the screen', async () => {
  const { w, writes } = term(100, 20);
  const err = term(100, 20);
  const d = new LiveDisplay(w, err.w);
  d.begin(shape(200));
  for (const h of hosts(200)) d.stepStart(h, 'commands', '#1 $ true');
  for (const h of hosts(10)) d.stepEnd(h, 'commands', '#1 $ true', '');
  for (const h of hosts(10)) d.stepStart(h, 'commands', '#2 $ uname -a');
  for (const h of hosts(5)) d.stepEnd(h, 'commands', '#2 $ uname -a', 'Linux');
  d.stepEnd('h6', 'commands', '#2 $ uname -a', undefined, 'exit 1: boom');
  await sleep(150);
  const frame = lastFrame(writes);
  assert.ok(frame.length <= 19, `frame of ${frame.length} lines on a 20-row screen`);
  assert.equal(frame[0].replace(/^\S+ /, ''), 'commands (each host in parallel): 5/200 done, 194 running, 1 failed');
  assert.match(frame.at(-1)!, /… \d+ more running/);
  for (const l of frame) assert.ok([...l].length <= 99, `line wider than the screen: ${l}`);
  // The failure was written once, above the frame, and stays in the scrollback.
  assert.equal(writes.join('').split('✖ h6 › #2 $ uname -a: exit 1: boom').length, 2);
  d.end();
  // What stays on screen: the phase as one line.
  assert.deepEqual(lastFrame(writes), ['✖ commands (each host in parallel): 5/200 done, 194 running, 1 failed']);
});

test('redraws are throttled: a thousand events between two frames cost one frame', async () => {
  const { w, writes } = term(80, 24);
  const d = new LiveDisplay(w);
  d.begin(shape(50));
  await sleep(120);
  const before = writes.length;
  for (let i = 0; i < 1000; i++) d.note(`h${(i % 50) + 1}`, `line ${i}`);
  for (const h of hosts(50)) d.stepStart(h, 'commands', '#1 $ true');
  assert.equal(writes.length, before, 'nothing is drawn on an event');
  await sleep(130);
  assert.ok(writes.length - before <= 3, `${writes.length - before} writes for one frame`);
  d.end();
});

test('a finished phase is written once as one line; small phases list each finished host', async () => {
  const { w, writes } = term(100, 30);
  const d = new LiveDisplay(w);
  d.begin(shape(2));
  for (const h of hosts(2)) {
    d.stepStart(h, 'commands', '#1 $ true');
    d.stepEnd(h, 'commands', '#1 $ true', '');
    d.stepStart(h, 'commands', '#2 $ uname -a');
    d.stepEnd(h, 'commands', '#2 $ uname -a', 'Linux x');
  }
  d.end();
  const out = writes.join('');
  assert.match(out, /✔ h1 \(2 steps\): #2 \$ uname -a: Linux x\n/);
  assert.equal(out.split(/✔ commands \(each host in parallel\): 2\/2 done in /).length, 2);
});

test('a terminal without a size is drawn as 80×24', async () => {
  const { w, writes } = term(0, 0);
  const d = new LiveDisplay(w);
  d.begin(shape(100));
  for (const h of hosts(100)) d.stepStart(h, 'commands', `#1 $ ${'x'.repeat(200)}`);
  await sleep(130);
  const frame = lastFrame(writes);
  assert.ok(frame.length > 1 && frame.length <= 23, `${frame.length} lines`);
  for (const l of frame) assert.ok([...l].length <= 79);
  d.end();
});

test('control characters from command output cannot move the cursor; wide characters count two columns', () => {
  assert.equal(sanitize('ok\x1b[2J\rgone\x07', 80), 'ok?[2J?gone?');
  assert.equal(sanitize('日本語テキスト', 6), '日本語…');
  assert.equal(sanitize('abcdef', 3), 'abc…');
});
