// Destructive steps need an explicit YES (or --yes). Without a terminal and without --yes the run
// refuses before anything changes: cron must say --yes on purpose.
import { createInterface } from 'node:readline/promises';
import type { Host } from '../inventory/types.js';
import type { Phase } from '../engine/playbook.js';
import { UsageError } from '../errors.js';

export async function confirmDestructive(phases: Phase[], selected: Host[], flags: { yes?: boolean }, playbook: string): Promise<void> {
  const destructive = phases.flatMap((ph) => ph.steps.filter((s) => s.destructive).map((s) => `${ph.name} › ${s.name}`));
  if (destructive.length === 0 || flags.yes) return;
  const list = destructive.map((d) => `  - ${d}`).join('\n');
  if (!process.stdin.isTTY) {
    throw new UsageError(`playbook ${playbook} has destructive steps and there is no terminal to confirm them:\n${list}`, {
      hint: `review them with \`chops plan ${playbook}\`, then re-run with --yes`,
    });
  }
  process.stderr.write(`These steps destroy or replace data on ${selected.length} host(s) (${selected.map((h) => h.name).join(', ')}):\n${list}\n`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question('Are you sure? Type YES to continue: ');
    if (answer.trim() !== 'YES') throw new UsageError('not confirmed; nothing was changed');
  } finally {
    rl.close();
  }
}
