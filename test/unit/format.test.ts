import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatDuration, renderTable } from '../../src/format.js';

test('formatDuration: one style from milliseconds to days', () => {
  assert.equal(formatDuration(4.25), '4.3 ms');
  assert.equal(formatDuration(850), '850 ms');
  assert.equal(formatDuration(1234), '1.2 s');
  assert.equal(formatDuration(12_345), '12 s');
  assert.equal(formatDuration(123_000), '2 min 3 s');
  assert.equal(formatDuration(3_720_000), '1 h 2 min');
  assert.equal(formatDuration(3 * 86_400_000 + 7_200_000), '3 d 2 h');
  assert.equal(formatDuration(Number.NaN), '?');
  assert.equal(formatDuration(-1), '?');
});

test('formatBytes: binary units like df -h', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(5 * 2 ** 30), '5.0 GiB');
  assert.equal(formatBytes(300 * 2 ** 20), '300 MiB');
});

test('renderTable: padded columns, no trailing blanks, any number of rows', () => {
  assert.equal(
    renderTable(
      ['A', 'BB'],
      [
        ['xyz', 1],
        ['', undefined],
      ],
    ),
    'A    BB\nxyz  1\n\n',
  );
  const many = Array.from({ length: 200_000 }, (_, i) => [String(i), 'x']);
  assert.equal(renderTable(['N', 'V'], many).split('\n').length, 200_002);
});

test('renderTable with a rule: dashes as wide as each column under the head (the move-data summary)', () => {
  assert.equal(renderTable(['replica', 'copy'], [['ch1', 'online']], { rule: true }), 'replica  copy\n-------  ------\nch1      online\n');
});

test('clockTime: HH:MM:SS.mmm in UTC, as toISOString, across second boundaries', async () => {
  const { clockTime } = await import('../../src/engine/output.js');
  let now = Date.UTC(2026, 11, 3, 23, 59, 59, 7);
  const ts = clockTime(() => now);
  for (const step of [0, 90, 903, 1, 999, 1000, 12_345]) {
    now += step;
    assert.equal(ts(), new Date(now).toISOString().slice(11, 23));
  }
});
