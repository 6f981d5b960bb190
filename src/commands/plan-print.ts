// Print what `chops plan` found: per phase, per host, per step, the exact commands and file
// writes that `run` would perform, or why the step has nothing to do.
import type { Host } from '../inventory/types.js';
import type { Phase } from '../engine/playbook.js';
import type { ExecuteResult } from '../engine/runner.js';
import type { Output } from '../engine/output.js';
import { redactor } from '../secrets.js';

export function printPlan(out: Output, phases: Phase[], res: ExecuteResult, selected: Host[], runLine = 'chops run <same arguments>'): void {
  const changes = res.session.plannedChanges();
  if (out.mode === 'json') {
    for (const c of changes)
      out.event({
        type: 'planned',
        host: c.host,
        step: c.step,
        kind: c.kind,
        command: redactor.redact(c.command),
        content: c.content === undefined ? undefined : redactor.redact(c.content),
      });
    out.event({ type: 'plan-end', ok: res.ok, changes: changes.length });
    return;
  }
  const lines: string[] = [];
  lines.push(
    `Phases: ${phases.map((p, i) => `${i + 1}. ${p.name} [${p.scope}]: ${p.steps.map((s) => (s.destructive ? `${s.name} (DESTRUCTIVE)` : s.disruptive ? `${s.name} (asks first)` : s.name)).join(' → ')}`).join('\n        ')}`,
  );
  for (const phase of phases) {
    lines.push('');
    lines.push(`== ${phase.name} (${phase.scope})`);
    const hosts = phase.scope === 'once' ? selected.slice(0, 1) : selected;
    for (const h of hosts) {
      lines.push(`${h.name} (${h.cluster} shard ${h.shardName} replica ${h.replica})`);
      for (const step of phase.steps) {
        const o = res.outcomes.find((x) => x.host === h.name && x.phase === phase.name && x.step === step.name);
        const mine = changes.filter((c) => c.host === h.name && c.step === step.name);
        const status = !o
          ? 'not reached'
          : o.failed
            ? `WOULD FAIL: ${o.failed}`
            : o.skipped
              ? `unchanged: ${o.skipped}`
              : (o.note ?? (mine.length ? '' : 'no change'));
        // A gate that does not pass now (data.passedNow false: "would wait: …") is not a ✓; nor is a step never reached.
        const waits =
          (res.results.find((x) => x.host === h.name && x.phase === phase.name && x.step === step.name)?.data as { passedNow?: boolean } | undefined)
            ?.passedNow === false;
        lines.push(`  ${o?.failed ? '✖' : mine.length ? '~' : waits || !o ? '…' : '✓'} ${step.name}${status ? `: ${redactor.redact(status)}` : ''}`);
        for (const c of mine) {
          lines.push(`      ${c.kind === 'put' ? '✎' : '$'} ${redactor.redact(c.command)}`);
          if (c.content !== undefined) for (const l of redactor.redact(c.content).split('\n').slice(0, 40)) lines.push(`          | ${l}`);
        }
      }
    }
  }
  lines.push('');
  lines.push(`${changes.length} change(s) would be made. Run it with: ${runLine}`);
  out.text(lines.join('\n'));
}
