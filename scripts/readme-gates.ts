// Write the gate-threshold table of README.md from src/gates/thresholds.ts (between its markers).
//   node --import tsx scripts/readme-gates.ts           rewrite README.md
//   node --import tsx scripts/readme-gates.ts --check   exit 1 when README.md is out of date
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { withThresholdsTable } from '../src/gates/thresholds.js';

const readme = fileURLToPath(new URL('../README.md', import.meta.url));
const text = readFileSync(readme, 'utf8');
const next = withThresholdsTable(text);
if (process.argv.includes('--check')) {
  if (next !== text) {
    console.error('README.md: the gate-threshold table is out of date: run node --import tsx scripts/readme-gates.ts');
    process.exit(1);
  }
} else if (next !== text) {
  writeFileSync(readme, next);
  console.log('README.md: gate-threshold table written');
}
