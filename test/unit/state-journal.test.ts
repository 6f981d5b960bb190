// The run journal (src/run/state/journal.ts, writer.ts): one line per step transition or
// remembered value between whole rewrites of state.yml, folded in on load; a torn last line is
// dropped, a journal older than its state.yml is never replayed.
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { encodeRecord, parseJournal, replay, type JournalRecord } from '../../src/run/state/journal.js';
import type { RunInit, RunState } from '../../src/run/state/model.js';
import { buildSteps, getStep } from '../../src/run/state/steps.js';
import { RunStore } from '../../src/run/state/store.js';
import type { RunWriter } from '../../src/run/state/writer.js';
import { scratchDirs } from '../support/scratch.js';

const freshDir = scratchDirs('chops-journal');
const freshStore = () => new RunStore(freshDir());
const HOSTS = ['h1', 'h2', 'h3', 'h4'];
const init = (): RunInit => ({
  playbook: 'rolling-restart',
  params: {},
  inventory: '/i.yml',
  inventoryHash: 'h',
  cluster: 'c',
  steps: buildSteps([
    { phase: 'preflight', scope: 'once', steps: ['check topology'], hosts: HOSTS },
    { phase: 'restart', scope: 'rolling', steps: ['stop', 'start'], hosts: HOSTS },
  ]),
});

/** Count whole rewrites of state.yml and journal writes of a run (spies on its writer). */
function spy(store: RunStore, id: string) {
  const w = (store as unknown as { writers: Map<string, RunWriter> }).writers.get(id) as unknown as {
    writeFold: () => Promise<void>;
    writeLines: (l: string[]) => Promise<void>;
  };
  const counts = { folds: 0, appends: 0, lines: 0 };
  const fold = w.writeFold.bind(w);
  const lines = w.writeLines.bind(w);
  w.writeFold = () => {
    counts.folds++;
    return fold();
  };
  w.writeLines = (l) => {
    counts.appends++;
    counts.lines += l.length;
    return lines(l);
  };
  return counts;
}

const step = (p: number, s: string, h: string, status: string, at = '2026-11-21T08:00:00.000Z'): JournalRecord =>
  ({ t: 'step', at, p, s, h, v: { status } }) as JournalRecord;

describe('parseJournal and replay', () => {
  it('parses one record per line and replays them in order onto the state', () => {
    const recs = [
      step(1, 'stop', 'h1', 'started', '2026-11-21T08:00:01.000Z'),
      { t: 'mem', at: '2026-11-21T08:00:02.000Z', h: 'h1', k: 'upgrade.previousVersion', v: '18.16.1' },
      step(1, 'stop', 'h1', 'done', '2026-11-21T08:00:03.000Z'),
      { t: 'mem', at: '2026-11-21T08:00:04.000Z', h: 'h1', k: 'gone', v: 1 },
      { t: 'mem', at: '2026-11-21T08:00:05.000Z', h: 'h1', k: 'gone' },
      step(0, 'check topology', 'h3', 'done', '2026-11-21T08:00:06.000Z'),
    ] as JournalRecord[];
    const parsed = parseJournal(recs.map(encodeRecord).join(''));
    assert.deepEqual(parsed, { records: recs });
    const st = { id: 'x', updatedAt: '2026-11-21T08:00:00.000Z', steps: init().steps, memory: {} } as unknown as RunState;
    replay(st, parsed.records);
    assert.equal(getStep(st, 1, 'stop', 'h1')?.status, 'done');
    assert.equal(getStep(st, 0, 'check topology', '*')?.status, 'done', 'a once-scoped step lives under "*"');
    assert.deepEqual(st.memory, { h1: { 'upgrade.previousVersion': '18.16.1' } });
    assert.equal(st.updatedAt, '2026-11-21T08:00:06.000Z');
  });

  it('a torn last line (no newline, or unparseable) is dropped; a bad line before it is corruption', () => {
    const good = encodeRecord(step(1, 'stop', 'h1', 'started')) + encodeRecord(step(1, 'stop', 'h1', 'done'));
    const half = encodeRecord(step(1, 'start', 'h1', 'started')).slice(0, 30);
    assert.deepEqual(parseJournal(good + half), { records: [step(1, 'stop', 'h1', 'started'), step(1, 'stop', 'h1', 'done')], torn: half });
    assert.equal(parseJournal(`${good}${half}\n`).torn, half, 'a torn line followed by a newline');
    assert.deepEqual(parseJournal(''), { records: [] });
    assert.throws(() => parseJournal(`${half}\n${good}`), /line 1: /);
    assert.throws(
      () => parseJournal(`${encodeRecord(step(1, 'stop', 'h1', 'done'))}{"t":"what","at":"x","h":"h1"}\n${good}`),
      /line 2: unknown record type "what"/,
    );
  });

  it('a record for a step the plan does not have is refused', () => {
    const st = { id: 'x', updatedAt: '', steps: init().steps, memory: {} } as unknown as RunState;
    assert.throws(() => replay(st, [step(1, 'reboot', 'h1', 'done')]), /no step "reboot"/);
    assert.throws(() => replay(st, [step(5, 'stop', 'h1', 'done')]), /no phase #5/);
  });
});

describe('RunStore with a journal', () => {
  it('step transitions append lines and never rewrite state.yml; load folds them in; the end folds and removes the journal', async () => {
    const store = freshStore();
    const st = await store.create(init());
    const counts = spy(store, st.id);
    const before = readFileSync(store.statePath(st.id), 'utf8');
    for (const h of HOSTS) {
      for (const s of ['stop', 'start']) {
        await store.mark(st, 1, s, h, { status: 'started' });
        await store.mark(st, 1, s, h, { status: 'done', changed: true, data: { h, s } });
      }
      await store.remember(st, h, 'restart.uptime', 42);
    }
    assert.equal(counts.folds, 0, 'no whole rewrite during the run');
    assert.equal(counts.lines, HOSTS.length * 5);
    assert.equal(readFileSync(store.statePath(st.id), 'utf8'), before, 'state.yml untouched');
    const journal = store.journalPath(st.id, st.journalEpoch!);
    assert.equal(readFileSync(journal, 'utf8').split('\n').filter(Boolean).length, HOSTS.length * 5);

    const loaded = await new RunStore(store.stateDir).load(st.id);
    assert.deepEqual(loaded.steps, st.steps);
    assert.deepEqual(loaded.memory, st.memory);
    assert.deepEqual(getStep(loaded, 1, 'start', 'h4')?.data, { h: 'h4', s: 'start' });

    st.outcome = 'succeeded';
    await store.save(st);
    await store.flush();
    assert.equal(counts.folds, 1);
    assert.deepEqual(readdirSync(store.runDir(st.id)), ['state.yml'], 'the journal is folded and gone');
    const fin = await store.load(st.id);
    assert.deepEqual(fin, st);
  });

  it('concurrent hosts: lines batch into few writes and never interleave', async () => {
    const store = freshStore();
    const st = await store.create(init());
    const counts = spy(store, st.id);
    const long = 'x'.repeat(20_000); // bigger than a pipe buffer: a torn or mixed write would show
    await Promise.all(
      HOSTS.map(async (h) => {
        for (const s of ['stop', 'start']) {
          await store.mark(st, 1, s, h, { status: 'started' });
          await store.mark(st, 1, s, h, { status: 'done', note: long });
        }
      }),
    );
    assert.ok(counts.appends < counts.lines, `batched: ${counts.lines} lines in ${counts.appends} writes`);
    const { records, torn } = parseJournal(readFileSync(store.journalPath(st.id, st.journalEpoch!), 'utf8'));
    assert.equal(torn, undefined);
    assert.equal(records.length, HOSTS.length * 4);
    assert.deepEqual((await store.load(st.id)).steps, st.steps);
  });

  it('a torn last line on disk is ignored on load and left behind by the resume that takes over', async () => {
    const store = freshStore();
    const st = await store.create(init());
    await store.mark(st, 1, 'stop', 'h1', { status: 'started' });
    await store.mark(st, 1, 'stop', 'h1', { status: 'done' });
    await store.flush();
    const journal = store.journalPath(st.id, st.journalEpoch!);
    appendFileSync(journal, '{"t":"step","at":"2026-11-21T08:00:00.000Z","p":1,"s":"start","h":"h1","v":{"sta');
    const other = new RunStore(store.stateDir); // the resuming process
    const loaded = await other.load(st.id);
    assert.equal(getStep(loaded, 1, 'stop', 'h1')?.status, 'done');
    assert.equal(getStep(loaded, 1, 'start', 'h1')?.status, 'pending', 'the torn transition never happened');
    await other.mark(loaded, 1, 'start', 'h1', { status: 'started' });
    await other.flush();
    // Its first record made it rewrite state.yml (new epoch) and start its own journal.
    assert.equal(loaded.journalEpoch, st.journalEpoch! + 1);
    assert.ok(!existsSync(journal), 'the torn journal is gone');
    const again = await new RunStore(store.stateDir).load(st.id);
    assert.equal(getStep(again, 1, 'stop', 'h1')?.status, 'done');
    assert.equal(getStep(again, 1, 'start', 'h1')?.status, 'started');
  });

  it('a journal of an older epoch (a crash between a rewrite and its cleanup) is never replayed', async () => {
    const store = freshStore();
    const st = await store.create(init());
    await store.mark(st, 1, 'stop', 'h1', { status: 'started' });
    await store.flush();
    const stale = store.journalPath(st.id, st.journalEpoch!);
    const staleText = readFileSync(stale, 'utf8');
    await store.mark(st, 1, 'stop', 'h1', { status: 'done' });
    await store.save(st); // state.yml now says done, epoch + 1
    await store.flush();
    writeFileSync(stale, staleText); // as if the crash came before the old journal was deleted
    const loaded = await new RunStore(store.stateDir).load(st.id);
    assert.equal(getStep(loaded, 1, 'stop', 'h1')?.status, 'done', 'the older "started" is not replayed over it');
  });

  it('a corrupt line inside the journal is an error naming the journal', async () => {
    const store = freshStore();
    const st = await store.create(init());
    await store.mark(st, 1, 'stop', 'h1', { status: 'started' });
    await store.flush();
    const journal = store.journalPath(st.id, st.journalEpoch!);
    writeFileSync(journal, `garbage\n${readFileSync(journal, 'utf8')}`);
    await assert.rejects(store.load(st.id), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.ok(err.message.includes(journal), err.message);
      assert.match(err.message, /corrupt: line 1/);
      return true;
    });
  });

  it('a failed append fails that call and the next ones (the journal may miss a line) until a whole rewrite', async () => {
    const store = freshStore();
    const st = await store.create(init());
    await store.mark(st, 1, 'stop', 'h1', { status: 'started' });
    await store.flush();
    const w = (store as unknown as { writers: Map<string, RunWriter> }).writers.get(st.id) as unknown as { journal?: { close(): Promise<void> } };
    await w.journal?.close(); // the next write on this handle fails (EBADF)
    await assert.rejects(store.mark(st, 1, 'stop', 'h1', { status: 'done' }));
    await assert.rejects(store.mark(st, 1, 'start', 'h1', { status: 'started' }), 'sticky until a fold');
    await assert.rejects(store.flush(), /could not save run state/);
    await store.save(st); // writes everything from memory: consistent again
    await store.flush();
    await store.mark(st, 1, 'start', 'h1', { status: 'done' });
    await store.flush();
    const loaded = await store.load(st.id);
    assert.equal(getStep(loaded, 1, 'stop', 'h1')?.status, 'done');
    assert.equal(getStep(loaded, 1, 'start', 'h1')?.status, 'done');
  });
});
