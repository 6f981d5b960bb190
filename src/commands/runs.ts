// `chops runs`: history of runs with their outcome, newest last.
import { RunStore } from '../run/state/store.js';
import { openInventory } from './common.js';
import { formatMs } from '../duration.js';

export async function runsCommand(flags: { inventory?: string; json?: boolean }): Promise<number> {
  const inv = await openInventory(flags);
  const store = new RunStore(inv.stateDir);
  const { abandonedInfo } = await import('./abandon.js');
  const rows = await Promise.all(
    (await store.list()).map(async (r) => {
      const abandoned = r.unreadable ? undefined : await abandonedInfo(store, r.id);
      return abandoned ? { ...r, abandoned } : r;
    }),
  );
  if (flags.json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  if (rows.length === 0) {
    process.stdout.write(`no runs yet under ${inv.stateDir}\n`);
    return 0;
  }
  const table = rows.map((r) => [
    r.id,
    r.playbook ?? '?',
    r.cluster ?? '?',
    r.unreadable
      ? 'UNREADABLE'
      : 'abandoned' in r
        ? `abandoned (was ${r.outcome})`
        : r.active
          ? 'running'
          : r.crashed
            ? 'crashed (resumable)'
            : (r.outcome ?? '?'),
    r.durationMs !== undefined ? formatMs(r.durationMs) : '',
    r.failed ? `${r.failed.host}: ${r.failed.step}` : (r.unreadable ?? ''),
  ]);
  process.stdout.write(formatTable(['RUN', 'PLAYBOOK', 'CLUSTER', 'OUTCOME', 'DURATION', 'FAILED AT'], table));
  return 0;
}

export function formatTable(head: string[], rows: string[][]): string {
  // A loop, not Math.max(...rows): spreading a very long list overflows the call stack.
  const w = head.map((h) => h.length);
  for (const r of rows) for (let i = 0; i < w.length; i++) w[i] = Math.max(w[i], (r[i] ?? '').length);
  const line = (r: string[]) =>
    r
      .map((c, i) => (c ?? '').padEnd(w[i]))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
