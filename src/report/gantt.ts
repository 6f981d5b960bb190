// A run as a Mermaid gantt in Markdown (to paste into a ticket): one section per host, one task
// per step that ran, failed steps marked crit, rollbacks as milestones.
import type { ReportModel } from './model.js';

export function ganttMarkdown(m: ReportModel): string {
  const st = m.state;
  const out = ['```mermaid', 'gantt', `  title ${task(`${st.playbook} run ${st.id} (${st.outcome})`)}`, '  dateFormat x', '  axisFormat %H:%M:%S'];
  let n = 0;
  for (const l of m.lanes) {
    out.push(`  section ${task(l.label)}`);
    for (const s of l.steps) {
      const start = s.start!;
      // A bar needs a length: a step that took less than a millisecond is drawn as one.
      const end = Math.max(s.end ?? m.t1, start + 1);
      const tag = s.status === 'failed' ? 'crit, ' : s.status === 'rolled-back' ? 'crit, done, ' : s.status === 'done' ? 'done, ' : 'active, ';
      out.push(`  ${task(s.name)} :${tag}s${++n}, ${start}, ${end}`);
      if (s.rolledBackAt !== undefined) out.push(`  rollback ${task(s.name)} :milestone, crit, s${++n}, ${s.rolledBackAt}, 0ms`);
    }
    for (const d of l.downtime) out.push(`  down (${d.until}) :crit, s${++n}, ${d.from}, ${Math.max(d.to, d.from + 1)}`);
  }
  out.push('```');
  return `${out.join('\n')}\n`;
}

/** Gantt task text ends at ':' and lines at '#' or ';': replace what would cut it short. */
function task(s: string): string {
  return (
    s
      .replace(/[\r\n]+/g, ' ')
      .replace(/:/g, '∶')
      .replace(/#/g, '♯')
      .replace(/;/g, ',')
      .trim() || '-'
  );
}
