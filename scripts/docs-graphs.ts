// npm run docs:graphs — rewrite the README's generated-diagrams block from `chops graph`.
import { readFileSync, writeFileSync } from 'node:fs';
import { readmeBlock, replaceBlock } from '../src/graph/docs.js';

const file = new URL('../README.md', import.meta.url);
const before = readFileSync(file, 'utf8');
const after = replaceBlock(before, await readmeBlock());
if (after !== before) writeFileSync(file, after);
process.stdout.write(after === before ? 'README diagrams are up to date\n' : 'README diagrams rewritten\n');
