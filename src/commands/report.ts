// `chops report [RUN]`: one self-contained HTML file for a run (default: the latest), or with
// --mermaid a gantt in Markdown. Reads the run's state file and run log; changes nothing.
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { RunState } from '../run/state.js';
import type { Inventory } from '../inventory/types.js';
import type { StepMeta } from '../report/model.js';
import { UsageError } from '../errors.js';
import { openInventory, type GlobalFlags } from './common.js';

export interface ReportFlags extends GlobalFlags {
  out?: string;
  open?: boolean;
  mermaid?: boolean;
}

export async function reportCommand(runId: string | undefined, flags: ReportFlags): Promise<number> {
  const inventory = await openInventory(flags);
  const { RunStore } = await import('../run/state.js');
  const store = new RunStore(inventory.stateDir);
  const state = runId ? await store.load(runId) : await store.latest();
  if (!state) throw new UsageError(`there is no run in ${store.runsDir}`, { hint: 'start one with `chops run`, list runs with `chops runs`' });
  const { parseRunLog } = await import('../report/runlog-read.js');
  const logText = await readFile(store.logPath(state.id), 'utf8').catch((err) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const { buildModel } = await import('../report/model.js');
  const model = buildModel(state, parseRunLog(logText), await stepMeta(state, inventory));
  model.durationParams = await durationParams(state);
  if (flags.mermaid) {
    const md = (await import('../report/gantt.js')).ganttMarkdown(model);
    if (flags.out) await writeFile(flags.out, md);
    else process.stdout.write(md);
    return 0;
  }
  const html = (await import('../report/html.js')).reportHtml(model);
  const file = resolve(flags.out ?? `${store.runDir(state.id)}/report.html`);
  await writeFile(file, html, { mode: 0o600 });
  if (flags.open) process.stdout.write(`${file}\n`);
  else process.stderr.write(`wrote ${file} (${model.lanes.length} lane(s), ${model.lanes.reduce((a, l) => a + l.steps.length, 0)} step run(s))\n`);
  return 0;
}

/** Which of the run's parameters are durations (kept in ms), by the playbook's definition; none when it cannot be loaded. */
async function durationParams(state: RunState): Promise<string[]> {
  try {
    const { loadPlaybook } = await import('../../playbooks/index.js');
    return (await loadPlaybook(state.playbook)).params.filter((p) => p.type === 'duration').map((p) => p.name);
  } catch {
    return [];
  }
}

/**
 * What the playbook's definition says about each step (gate, destructive, downtime), from the
 * same phases the run was built from. A playbook that cannot be rebuilt (renamed, parameters no
 * longer valid) gives a report without these marks rather than no report.
 */
async function stepMeta(state: RunState, inventory: Inventory): Promise<((pi: number, step: string) => StepMeta | undefined) | undefined> {
  try {
    const { loadPlaybook } = await import('../../playbooks/index.js');
    const pb = await loadPlaybook(state.playbook);
    const phases = pb.phases(structuredClone(state.params), inventory);
    return (pi, name) => {
      const s = phases[pi]?.steps.find((x) => x.name === name);
      return s ? { gate: s.gate, destructive: s.destructive, waitsFor: s.waitsFor, downtime: s.downtime, description: s.description } : undefined;
    };
  } catch {
    return undefined;
  }
}
