// state.yml as text (src/run/state/state-file.ts, schema.ts): JSON that any YAML 1.2 reader
// reads back exactly, hostile strings included; the declarative check of a parsed file names
// the path of what is wrong; the head that pruning reads; a file of the chops before the
// journal (its own block-style YAML emitter) still loads and resumes.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { Redactor } from '../../src/run/redact.js';
import { reopenForResume } from '../../src/run/state/resume-policy.js';
import type { RunState } from '../../src/run/state/model.js';
import { checkRunState } from '../../src/run/state/schema.js';
import { parseStateFile, readStateHead, serializeState } from '../../src/run/state/state-file.js';
import { buildSteps, getStep } from '../../src/run/state/steps.js';
import { RunStore } from '../../src/run/state/store.js';
import { HOSTILE } from '../support/hostile.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'chops-statefile-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

const ID = '20261121-080000-abcd';
function sample(): RunState {
  return {
    version: 1,
    id: ID,
    playbook: 'exec',
    params: { cmd: ['true'] },
    paramsHash: 'p',
    inventory: '/i.yml',
    inventoryHash: 'h',
    cluster: 'c',
    createdAt: '2026-11-21T08:00:00.000Z',
    updatedAt: '2026-11-21T08:00:01.000Z',
    pid: 123,
    controller: 'ctl',
    outcome: 'running',
    journalEpoch: 2,
    steps: buildSteps([{ phase: 'p', scope: 'each', steps: ['s'], hosts: ['h1'] }]),
    memory: {},
  };
}

// Scalars that a YAML emitter can get wrong: type look-alikes, indicators, the old emitter's
// ".5"/".inf" trap, a key longer than YAML's 1024-character implicit-key limit.
const TRICKY = [
  ...HOSTILE,
  'yes',
  'No',
  'null',
  '~',
  '0644',
  '22.10',
  '01',
  '1e3',
  '.5',
  '.inf',
  '-.inf',
  '.nan',
  '-',
  '- x',
  'a: b',
  'a #b',
  '[x]',
  '{y}',
  '&anchor',
  '*alias',
  '!tag',
  '%dir',
  '@at',
  '?',
  ': ',
  'trailing ',
  ' lead',
  '\u2028',
  'k'.repeat(2000),
];

describe('state.yml text', () => {
  it('is JSON and reads back exactly through a YAML 1.2 parser, hostile strings in values and keys', () => {
    const st = sample();
    st.params = { cmd: TRICKY, n: 3, f: 1.5, neg: -2, t: true, nil: null, empty: [], emptyMap: {} };
    st.steps = buildSteps([{ phase: 'p', scope: 'rolling', steps: TRICKY.filter((x, i) => TRICKY.indexOf(x) === i), hosts: ['h1', '*'] }]);
    st.steps[0].steps[0].hosts.h1 = { status: 'done', note: TRICKY.join('|'), data: { k: TRICKY }, durationMs: 12 };
    st.memory = { h1: Object.fromEntries(TRICKY.map((k, i) => [k, { i, v: k }])) };
    const text = serializeState(st);
    assert.deepEqual(JSON.parse(text), st);
    assert.deepEqual(parseYaml(text), st);
    assert.deepEqual(parseStateFile(text, '/x/state.yml', ID), st);
  });

  it('redacts errors, notes, step data and memory on the way to disk, not in memory', () => {
    const r = new Redactor();
    r.add('hunter22');
    const st = sample();
    st.error = 'h1: hunter22';
    st.steps[0].steps[0].hosts.h1 = { status: 'failed', error: 'x hunter22', note: 'n hunter22', data: { out: ['hunter22'] } };
    st.memory = { h1: { 'a.b': { pw: 'is hunter22' } } };
    const text = serializeState(st, r);
    assert.ok(!text.includes('hunter22'), text);
    const back = JSON.parse(text);
    assert.equal(back.error, 'h1: ***');
    assert.deepEqual(back.steps[0].steps[0].hosts.h1.data, { out: ['***'] });
    assert.deepEqual(back.memory, { h1: { 'a.b': { pw: 'is ***' } } });
    assert.equal(st.memory.h1['a.b'] && (st.memory.h1['a.b'] as { pw: string }).pw, 'is hunter22');
  });

  it('the head (outcome, last update, owner, journal epoch) comes first and is read from the first bytes', async () => {
    const st = sample();
    st.params = { big: 'x'.repeat(100_000) };
    const f = join(root, 'head.yml');
    writeFileSync(f, serializeState(st));
    assert.deepEqual(await readStateHead(f), { outcome: 'running', updatedAt: st.updatedAt, pid: 123, controller: 'ctl', journalEpoch: 2 });
    writeFileSync(f, readFileSync(join(import.meta.dirname, '../fixtures/state/old-emitter.state.yml')));
    assert.equal(await readStateHead(f), undefined, 'no head in an old file: it is read whole');
    writeFileSync(f, '{"version": 1,\n  "id": [');
    assert.equal(await readStateHead(f), undefined);
  });
});

describe('the check of a parsed state', () => {
  const bad = (edit: (d: any) => void) => {
    const d: any = structuredClone(sample());
    edit(d);
    return checkRunState(d);
  };
  it('accepts a good state and fills in what older files lack', () => {
    assert.deepEqual(checkRunState(sample()), sample());
    const old: any = sample();
    delete old.memory;
    delete old.journalEpoch;
    old.params = null;
    const st = checkRunState(old) as RunState;
    assert.deepEqual([st.memory, st.params], [{}, {}]);
  });
  it('names the path of the first problem, what was expected and what was found', () => {
    assert.equal(checkRunState('text'), 'not a YAML mapping');
    assert.equal(checkRunState([]), 'not a YAML mapping');
    assert.match(bad((d) => (d.version = 2)) as string, /unsupported version 2/);
    assert.equal(
      bad((d) => delete d.pid),
      'pid: expected an integer, found undefined undefined',
    );
    assert.equal(
      bad((d) => (d.outcome = 'done')),
      'outcome: expected one of running, succeeded, failed, interrupted, found "done"',
    );
    assert.equal(
      bad((d) => (d.steps[0].scope = 'all')),
      'steps[0].scope: expected one of each, rolling, once, found "all"',
    );
    assert.equal(
      bad((d) => (d.steps[0].steps[0].hosts.h1.status = 'ok')),
      'steps[0].steps[0].hosts.h1.status: expected one of pending, started, done, failed, skipped, rolled-back, found "ok"',
    );
    assert.equal(
      bad((d) => (d.steps[0].steps[0].hosts.h1.durationMs = '5')),
      'steps[0].steps[0].hosts.h1.durationMs: expected a number, found "5"',
    );
    assert.equal(
      bad((d) => (d.steps = {})),
      'steps: expected a list, found a mapping',
    );
    assert.equal(
      bad((d) => (d.memory = { h1: [] })),
      'memory.h1: expected a mapping, found a list',
    );
    assert.equal(
      bad((d) => (d.limit = ['a', 1])),
      'limit[1]: expected a string, found number 1',
    );
    assert.equal(
      bad((d) => (d.journalEpoch = 1.5)),
      'journalEpoch: expected an integer, found number 1.5',
    );
  });
  it('a problem reaches the operator as a corrupt-file error naming the file', () => {
    const text = JSON.stringify({ ...sample(), pid: 'x' });
    assert.throws(() => parseStateFile(text, '/s/runs/x/state.yml', ID), /run state \/s\/runs\/x\/state\.yml is corrupt: pid: expected an integer/);
    assert.throws(() => parseStateFile(JSON.stringify(sample()), '/f', '20261121-080000-ffff'), /id "20261121-080000-abcd" does not match its directory/);
    assert.throws(() => parseStateFile('{"version": 1,', '/f', ID), /corrupt: /);
  });
});

describe('a state file written by the chops before this one (its own YAML emitter)', () => {
  it('loads, resumes, and is written back as JSON with its journal', async () => {
    const fixture = join(import.meta.dirname, '../fixtures/state/old-emitter.state.yml');
    const id = /^id: "([^"]+)"$/m.exec(readFileSync(fixture, 'utf8'))![1];
    const store = new RunStore(join(root, 'upgrade'));
    mkdirSync(store.runDir(id), { recursive: true });
    copyFileSync(fixture, store.statePath(id));
    const st = await store.load(id);
    assert.equal(st.outcome, 'running');
    assert.deepEqual(st.params, { waitTimeout: 300000, cmd: ['echo "a: b"', 'yes', '0644'] });
    assert.deepEqual(st.limit, ['ch1', 'ch2']);
    assert.equal(getStep(st, 0, 'check topology', '*')?.note, '4 hosts match');
    assert.equal(getStep(st, 1, 'check peers', 'ch1')?.durationMs, 50);
    assert.equal(getStep(st, 1, 'stop clickhouse-server', 'ch1')?.status, 'started');
    assert.deepEqual(st.memory, {});
    for (const r of await store.list()) assert.equal(r.unreadable, undefined);

    reopenForResume(st);
    await store.mark(st, 1, 'stop clickhouse-server', 'ch1', { status: 'started' });
    await store.mark(st, 1, 'stop clickhouse-server', 'ch1', { status: 'done' });
    await store.remember(st, 'ch1', 'restart.note', 'resumed across an upgrade');
    await store.flush();
    const text = readFileSync(store.statePath(id), 'utf8');
    assert.equal(JSON.parse(text).pid, process.pid, 'rewritten as JSON by the process that took it over');
    const back = await new RunStore(store.stateDir).load(id);
    assert.equal(getStep(back, 1, 'stop clickhouse-server', 'ch1')?.status, 'done');
    assert.equal(back.memory.ch1['restart.note'], 'resumed across an upgrade');
    assert.equal(getStep(back, 0, 'check topology', '*')?.note, '4 hosts match');
  });
});
