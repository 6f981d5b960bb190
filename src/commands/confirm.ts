// Runs that destroy data (destructive steps) or take servers out of service (disruptive steps:
// stopping ClickHouse, rebooting, an operator's command run replica by replica between the health
// gates) need an explicit YES, or --yes. Without a terminal and without --yes such a run refuses
// (exit 2) before anything changes: cron must say --yes on purpose. Read-only runs (facts, plan)
// and `exec` in parallel without --reboot do not ask: they run what the operator typed and stop
// nothing on their own.
import { createInterface } from 'node:readline/promises';
import type { Host } from '../inventory/types.js';
import type { Phase } from '../engine/playbook.js';
import { UsageError } from '../errors.js';

export async function confirmDestructive(phases: Phase[], selected: Host[], flags: { yes?: boolean }, playbook: string): Promise<void> {
  const list = (pick: (s: Phase['steps'][number]) => boolean) => phases.flatMap((ph) => ph.steps.filter(pick).map((s) => `${ph.name} › ${s.name}`));
  const destructive = list((s) => !!s.destructive);
  const disruptive = list((s) => !!s.disruptive && !s.destructive);
  if ((destructive.length === 0 && disruptive.length === 0) || flags.yes) return;
  const lines = (items: string[]) => items.map((d) => `  - ${d}`).join('\n');
  const what = [
    destructive.length ? `destroy or replace data:\n${lines(destructive)}` : '',
    disruptive.length ? `take servers out of service (stop, restart or reboot them, one replica per shard at a time):\n${lines(disruptive)}` : '',
  ].filter(Boolean);
  if (!process.stdin.isTTY) {
    const kind = destructive.length ? 'destructive' : 'disruptive';
    throw new UsageError(`playbook ${playbook} has ${kind} steps and there is no terminal to confirm them; these steps ${what.join('\nand these ')}`, {
      hint: `review them with \`chops plan ${playbook}\`, then re-run with --yes`,
    });
  }
  const names =
    selected
      .slice(0, 20)
      .map((h) => h.name)
      .join(', ') + (selected.length > 20 ? `, … (${selected.length})` : '');
  process.stderr.write(`On ${selected.length} host(s) (${names}) these steps ${what.join('\nand these ')}\n`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question('Are you sure? Type YES to continue: ');
    if (answer.trim() !== 'YES') throw new UsageError('not confirmed; nothing was changed');
  } finally {
    rl.close();
  }
}
