#!/usr/bin/env node
// Entry point: loads the bundled CLI (npm run build: dist/bundle/chops.cjs) through a V8 code
// cache, so a run does not parse and compile chops again each time (~0.1 s of CPU per run, a
// quarter of what chops spends beyond the raw-ssh2 floor; bench:fanout). One cache per command
// (`run`, `plan`, `--help`, …) in dist/bundle/cache/, written by the first run of that command
// that exits 0, again whenever V8 rejects it (another node version, a rebuilt bundle: V8 checks
// the source hash, its own version and flags before it uses one), and by a run much larger than
// the one that trained it (below). A cache that cannot be written (a read-only install) only
// costs the compile time.
//
// CommonJS (bin/package.json says so): an ES module entry would cost Node 20 its ESM loader and
// a facade for each builtin imported (~15 ms of CPU per run).
'use strict';
const { closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } = require('node:fs');
const { Module, createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const vm = require('node:vm');

const file = join(__dirname, '..', 'dist', 'bundle', 'chops.cjs');
let source;
let bundleStat;
try {
  // Read and stat through one descriptor: a rebuild in between cannot lend its identity to this code.
  const fd = openSync(file, 'r');
  try {
    bundleStat = fstatSync(fd);
    source = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
} catch {
  process.stderr.write('chops is not built yet: run `npm ci` (or `npm run build`) in ' + join(__dirname, '..') + '\n');
  process.exit(2);
}
const command = process.argv.slice(2).find((a) => !a.startsWith('-')) ?? 'help';
const cacheFile = join(dirname(file), 'cache', `${/^[a-z][a-z-]{0,30}$/.test(command) ? command : 'other'}.v8`);
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  /* first run of this command */
}
const script = new vm.Script(Module.wrap(source), {
  filename: file,
  cachedData,
});
// A cache trained by a small run of its command (one quick step, a path that exits 0 early)
// lacks the functions a larger run needs, and those then compile on every run (~0.1 s of CPU on
// the 20-host fan-out): a run that took clearly more CPU than the one that trained the cache
// trains it again. The bar rises 1.5× each time (recorded up to 3 s), so a command's cache
// settles after a few runs.
const trainedFile = `${cacheFile}.cpu`;
const cacheServes = cachedData !== undefined && !script.cachedDataRejected;
let trainedCpuMs = 0;
if (cacheServes) {
  try {
    trainedCpuMs = Number(readFileSync(trainedFile, 'utf8')) || 0;
  } catch {
    /* a cache from before the sidecar: retrained by the next larger run */
  }
}
process.once('exit', (code) => {
  if (code !== 0) return; // a run cut short compiled only part of what the command needs
  const cpu = process.cpuUsage();
  const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
  if (cacheServes && !(cpuMs > trainedCpuMs * 1.5 + 30)) return;
  try {
    mkdirSync(dirname(cacheFile), { recursive: true });
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(tmp, script.createCachedData(), { mode: 0o644 });
    renameSync(tmp, cacheFile); // concurrent runs: one whole cache wins
    // Capped: a run of hours (health polling) must not set a bar no later run reaches, with a
    // cache from which V8 may have flushed the start-up functions meanwhile.
    writeFileSync(trainedFile, `${Math.min(cpuMs, 3000)}\n`, { mode: 0o644 });
  } catch {
    /* read-only install: compile each time */
  }
});
// Where the bundle may keep other things that only this build may read back (a validated
// inventory: src/inventory/parse-cache.ts). The bundle file's inode, size, mtime and ctime name
// the build (ctime: a copy with its mtime restored is still another file); a rebuild also empties
// the directory.
const st = bundleStat;
globalThis[Symbol.for('chops.cache')] = { dir: dirname(cacheFile), build: `${st.ino}-${st.size}-${st.mtimeMs}-${st.ctimeMs}` };
// The bundle's requires resolve from its own place (createRequire); it exports nothing.
const mod = new Module(file);
script.runInThisContext()(mod.exports, createRequire(file), mod, file, dirname(file));
