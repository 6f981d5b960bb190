import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { emitYaml } from '../../src/run/yaml-emit.js';
import { HOSTILE } from '../support/hostile.js';

test('emitYaml round-trips through a YAML 1.2 parser, hostile strings included', () => {
  const tricky = [...HOSTILE, 'yes', 'No', 'null', '~', '0644', '22.10', '01', '1e3', '-', '- x', 'a: b', 'a #b', '[x]', '{y}', '&anchor', '*alias', '!tag', '%dir', '@at', '`tick`', '"', "'", '?', ': ', 'trailing ', ' lead', '\t', '\r\n', '\u2028', 'key:value', 'http://x/y?z=1'];
  const doc = {
    version: 1,
    id: '20261121-000000-abcd',
    params: { cmd: tricky, n: 3, f: 1.5, neg: -2, t: true, nil: null, empty: [], emptyMap: {} },
    steps: [
      { phase: 'p', scope: 'rolling', steps: tricky.map((name) => ({ name, hosts: { h1: { status: 'done', note: name, durationMs: 12 }, '*': { status: 'pending' } } })) },
    ],
    nested: [[1, 2], [], [{ a: 1 }]],
    [tricky[2]]: 'hostile key',
  };
  assert.deepEqual(parse(emitYaml(doc)), doc);
});
