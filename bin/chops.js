#!/usr/bin/env node
// Entry point: the bundled CLI (npm run build). Kept tiny so `chops --help` starts fast.
import { existsSync } from 'node:fs';
const cli = new URL('../dist/bundle/chops.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('chops is not built yet: run `npm ci` (or `npm run build`) in ' + new URL('..', import.meta.url).pathname + '\n');
  process.exit(2);
}
await import(cli.href);
