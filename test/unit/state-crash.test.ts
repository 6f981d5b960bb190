// What is on disk when chops dies by SIGKILL mid-run (the real Runner and RunStore in a child
// process, test/fixtures/state/crash-run.ts): a step's start is there before its first command
// ran, a step's done (with the memory it set, even unawaited) before the next step started; and
// a resume finds the memory.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { getStep } from '../../src/run/state/steps.js';
import { RunStore } from '../../src/run/state/store.js';

const script = new URL('../fixtures/state/crash-run.ts', import.meta.url).pathname;
const hosts = ['a1', 'a2', 'b1', 'b2'];

test("SIGKILL in a step's first command: its start, the earlier steps' done and memory are on disk; resume sees the memory", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'chops-crash-'));
  try {
    const child = execa(process.execPath, ['--import', 'tsx', script, dir], { reject: false });
    const firstPid = child.pid;
    const first = await child;
    assert.equal(first.signal, 'SIGKILL', `the run killed itself: ${first.stderr}`);
    const id = readFileSync(join(dir, 'run-id'), 'utf8');
    const store = new RunStore(dir);
    const st = await store.load(id);
    const status = (step: string, h: string) => getStep(st, 0, step, h)?.status ?? 'pending';
    const working = hosts.filter((h) => status('work', h) === 'started');
    assert.ok(working.length >= 1, 'the step whose first command killed chops is recorded as started');
    for (const h of hosts) {
      assert.equal(status('after', h), 'pending', `${h}: nothing after the kill`);
      if (status('work', h) !== 'pending') {
        // "work" began on h, so "learn" had finished: its done, data and memory were on disk first
        assert.equal(status('learn', h), 'done', `${h}: learn done before work started`);
        assert.deepEqual(getStep(st, 0, 'learn', h)?.data, { seen: h });
        assert.equal(getStep(st, 0, 'learn', h)?.note, 'learned');
        assert.equal((st.memory[h]?.['crash.learned'] as { host?: string } | undefined)?.host, h, `${h}: memory on disk with its done`);
      }
    }
    assert.equal(st.outcome, 'running', 'the crashed run is still "running" on disk');

    const resumed = await execa(process.execPath, ['--import', 'tsx', script, dir, id], { reject: false });
    assert.equal(resumed.exitCode, 0, resumed.stderr);
    const fin = await new RunStore(dir).load(id);
    assert.equal(fin.outcome, 'succeeded');
    for (const h of hosts) {
      const learned = (getStep(fin, 0, 'after', h)?.data as { learned?: { host: string; pid: number } } | undefined)?.learned;
      assert.equal(learned?.host, h, `${h}: the resumed run read the memory`);
      if (working.includes(h)) {
        assert.match(getStep(fin, 0, 'work', h)?.note ?? '', /nothing to do on resume/, `${h}: the step in progress ran again`);
        // "learn" was done before the kill and is not repeated: the value comes from the first process
        assert.equal(learned?.pid, firstPid, `${h}: memory written by the killed process, read by the resume`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
