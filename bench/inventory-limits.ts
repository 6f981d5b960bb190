// bench:inventory — what an inventory of any size or shape costs before chops answers: the
// issue-8 shapes (alias bomb, one problem per replica, deep nesting, huge valid file, a file of
// tiny nodes at the node limit, FIFO, /dev/zero) through the built CLI's `inventory check`, with
// wall time, CPU and peak RSS per shape (GNU time). Not a timed test: the machine is shared.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHOPS = fileURLToPath(new URL('../bin/chops.js', import.meta.url));
const head = 'version: 1\ndefaults:\n  ssh: {identity_file: /etc/hostname, known_hosts: /etc/hostname}\n';
const replicas = (rows: string[]) => `${head}clusters:\n  c:\n    shards:\n      - replicas:\n${rows.join('\n')}\n`;
const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 127) + 1}`;

const shapes: Record<string, () => string> = {
  'alias bomb (5000-item anchor x 9990)': () =>
    `${head}  vars:\n    big: &big [${Array(5000).fill('1').join(',')}]\n${Array.from({ length: 9990 }, (_, i) => `    r${i}: *big`).join('\n')}\n` +
    'clusters: {c: {shards: [{replicas: [{host: h1, address: 10.0.0.1}]}]}}\n',
  '20 000 replicas, a problem each': () => replicas(Array.from({ length: 20_000 }, (_, i) => `          - {host: h${i}, address: ${ip(i)}, ssh: {port: 0}}`)),
  '2000 nested maps': () => `${head}  vars:\n${Array.from({ length: 2000 }, (_, i) => `${'  '.repeat(i + 2)}k${i}:`).join('\n')}\n${'  '.repeat(2002)}v: 1\n`,
  '130 000 valid replicas': () => replicas(Array.from({ length: 130_000 }, (_, i) => `          - {host: h${i}, address: ${ip(i)}}`)),
  'flow list near the node limit (990 000 items)': () =>
    `${head}  vars:\n    x: [${Array(990_000).fill('0').join(',')}]\nclusters: {c: {shards: [{replicas: [{host: h1, address: 10.0.0.1}]}]}}\n`,
  'flow list past the node limit (4M items, 8 MB)': () => `${head}  vars:\n    x: [${Array(4_000_000).fill('0').join(',')}]\n`,
};

async function measure(label: string, file: string): Promise<void> {
  const r = await execa('/usr/bin/time', ['-f', '%e %U %S %M', process.execPath, CHOPS, 'inventory', 'check', '-i', file], { reject: false, timeout: 600_000 });
  const [wall, user, sys, kb] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  const lines = r.stderr.split('\n');
  const verdict = (lines.find((l) => /^\S+:\d+:\d+: /.test(l)) ?? lines.find((l) => l.startsWith('chops: ')) ?? r.stdout.split('\n')[0]).replace(dir, '…');
  console.log(
    `${label.padEnd(48)} exit ${String(r.exitCode).padEnd(3)} wall ${wall.toFixed(2).padStart(6)} s  cpu ${(user + sys).toFixed(2).padStart(6)} s  rss ${Math.round(
      kb / 1024,
    )
      .toString()
      .padStart(5)} MB  ${verdict.slice(0, 90)}`,
  );
}

const dir = await mkdtemp(join(tmpdir(), 'chops-bench-inv-'));
try {
  for (const [label, make] of Object.entries(shapes)) {
    const file = join(dir, 'inv.yml');
    const text = make();
    await writeFile(file, text);
    await measure(`${label} (${(Buffer.byteLength(text) / 1024).toFixed(0)} KB)`, file);
  }
  const fifo = join(dir, 'fifo.yml');
  execFileSync('mkfifo', [fifo]);
  await measure('a FIFO', fifo);
  await measure('/dev/zero', '/dev/zero');
} finally {
  await rm(dir, { recursive: true, force: true });
}
