// Print what `chops plan` found: per phase, per host, per step, the exact commands and file
// writes that `run` would perform, or why the step has nothing to do.
import type { Host } from '../inventory/types.js';
import type { Phase } from '../engine/playbook.js';
import type { ExecuteResult } from '../engine/runner.js';
import type { Output } from '../engine/output.js';
import { redactor } from '../secrets.js';

export function printPlan(out: Output, phases: Phase[], res: ExecuteResult, selected: Host[]): void {
  const changes = res.session.plannedChanges();
  if (out.mode === 'json') {
    for (const c of changes) out.event({ type: 'planned', host: c.host, step: c.step, kind: c.kind, command: redactor.redact(c.command), content: c.content === undefined ? undefined : redactor.redact(c.content) });
    out.event({ type: 'plan-end', ok: res.ok, changes: changes.length });
    return;
  }
  // Changes arrive in execution order per host; attribute them to steps by the order recorded.
  const lines: string[] = [];
  const byHost = new Map<string, typeof changes>();
  for (const c of changes) {
    if (!byHost.has(c.host)) byHost.set(c.host, []);
    byHost.get(c.host)!.push(c);
  }
  lines.push(`Phases: ${phases.map((p, i) => `${i + 1}. ${p.name} [${p.scope}]: ${p.steps.map((s) => (s.destructive ? `${s.name} (DESTRUCTIVE)` : s.name)).join(' → ')}`).join('\n        ')}`);
  lines.push('');
  for (const h of selected) {
    const list = byHost.get(h.name) ?? [];
    lines.push(`${h.name} (${h.cluster} shard ${h.shardName} replica ${h.replica}): ${list.length ? `${list.length} change(s)` : 'no changes'}`);
    let step: string | undefined;
    for (const c of list) {
      if (c.step !== step) {
        step = c.step;
        lines.push(`  ${step ?? '(no step)'}:`);
      }
      lines.push(`    ${c.kind === 'put' ? '✎' : '$'} ${redactor.redact(c.command)}`);
      if (c.content !== undefined) for (const l of redactor.redact(c.content).split('\n').slice(0, 40)) lines.push(`        | ${l}`);
    }
  }
  if (res.results.length) {
    lines.push('');
    for (const r of res.results) if (typeof r.data === 'string') lines.push(`${r.host} ${r.step}: ${r.data}`);
  }
  lines.push('');
  lines.push(`${changes.length} change(s) would be made. Run it with: chops run <same arguments>`);
  out.text(lines.join('\n'));
}
