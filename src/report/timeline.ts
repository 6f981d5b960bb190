// The Gantt-like timeline of a run as inline SVG: one lane per host, one bar per step that ran
// (coloured by outcome), each replica's downtime as a band behind its lane, rollbacks as
// markers. Plain SVG with data-* attributes, so a test (or a person) can read it from the DOM.
import { formatDuration } from '../format.js';
import type { Lane, ReportModel, StepBar } from './model.js';
import { esc } from './html-util.js';

const LABEL_W = 190;
const WIDTH = 1180;
const LANE_H = 34;
const BAR_H = 20;
const AXIS_H = 28;

export function timelineSvg(m: ReportModel): string {
  const span = Math.max(1, m.t1 - m.t0);
  const plotW = WIDTH - LABEL_W - 16;
  const x = (t: number) => LABEL_W + ((t - m.t0) / span) * plotW;
  const height = AXIS_H + m.lanes.length * LANE_H + 8;
  const out: string[] = [
    `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="timeline of run ${esc(m.state.id)}">`,
    '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fb8c00"/><line x1="0" y1="0" x2="0" y2="6" stroke="#fff3e0" stroke-width="3"/></pattern></defs>',
  ];
  for (const t of ticks(span)) {
    const tx = x(m.t0 + t);
    out.push(`<line class="tick" x1="${f(tx)}" y1="${AXIS_H - 6}" x2="${f(tx)}" y2="${height - 4}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${f(tx)}" y="${AXIS_H - 10}" font-size="10" text-anchor="middle" fill="#607d8b">+${esc(formatDuration(t))}</text>`);
  }
  m.lanes.forEach((lane, i) => {
    out.push(laneSvg(lane, AXIS_H + i * LANE_H, x));
  });
  out.push('</svg>');
  return out.join('\n');
}

function laneSvg(lane: Lane, y: number, x: (t: number) => number): string {
  const out: string[] = [`<g class="lane" data-host="${esc(lane.host)}" data-steps="${lane.steps.length}">`];
  out.push(`<rect x="0" y="${y}" width="${WIDTH}" height="${LANE_H}" fill="${lane.steps.some((s) => s.status === 'failed') ? '#fff5f5' : 'transparent'}"/>`);
  out.push(`<text class="lane-label" x="8" y="${y + LANE_H / 2 + 4}" font-size="12" font-weight="600" fill="#263238">${esc(clip(lane.label, 28))}</text>`);
  for (const d of lane.downtime) {
    const x0 = x(d.from);
    const w = Math.max(2, x(d.to) - x0);
    out.push(
      `<rect class="downtime" data-until="${d.until}" data-ms="${d.to - d.from}" x="${f(x0)}" y="${y + 1}" width="${f(w)}" height="${LANE_H - 2}" fill="#ef5350" fill-opacity="0.16" stroke="#e53935" stroke-dasharray="3 2"><title>${esc(`${lane.host} down ${formatDuration(d.to - d.from)} (until ${d.until})`)}</title></rect>`,
    );
    out.push(
      `<text x="${f(x0 + 3)}" y="${y + LANE_H - 3}" font-size="9" fill="#c62828">down ${esc(formatDuration(d.to - d.from))}${d.until === 'healthy' ? '' : ` (${d.until})`}</text>`,
    );
  }
  for (const s of lane.steps) out.push(barSvg(lane, s, y, x));
  out.push('</g>');
  return out.join('\n');
}

function barSvg(lane: Lane, s: StepBar, y: number, x: (t: number) => number): string {
  const start = s.start!;
  const end = s.end ?? start;
  const x0 = x(start);
  const w = Math.max(3, x(end) - x0);
  const by = y + (LANE_H - BAR_H) / 2 - 3;
  const dur = s.end !== undefined ? formatDuration(end - start) : 'did not finish';
  const tip = [`${lane.host} · ${s.phase} › ${s.name}`, `${s.status}${s.changed === false ? ' (unchanged)' : ''}, ${dur}`, s.note, s.error]
    .filter(Boolean)
    .join('\n');
  const out = [
    `<g class="step" data-step="${esc(s.name)}" data-phase="${esc(s.phase)}" data-status="${s.status}" data-ms="${s.end !== undefined ? end - start : ''}">`,
    `<rect x="${f(x0)}" y="${by}" width="${f(w)}" height="${BAR_H}" rx="3" fill="${fill(s)}" stroke="${s.meta.destructive ? '#b71c1c' : '#37474f'}" stroke-width="${s.meta.destructive ? 2 : 0.6}"><title>${esc(tip)}</title></rect>`,
  ];
  const label = clip(s.name, Math.floor((w - 6) / 6));
  if (label.length >= 4)
    out.push(
      `<text x="${f(x0 + 3)}" y="${by + 14}" font-size="10" fill="${s.status === 'failed' ? '#ffffff' : '#102027'}" pointer-events="none">${esc(label)}</text>`,
    );
  if (s.rolledBackAt !== undefined) {
    const rx = x(s.rolledBackAt);
    out.push(
      `<path class="rollback" d="M${f(rx)} ${by - 2} l5 -6 h-10 z" fill="#ef6c00"><title>${esc(`rolled back at +${formatDuration(s.rolledBackAt - start)} after the step began`)}</title></path>`,
    );
  }
  out.push('</g>');
  return out.join('');
}

function fill(s: StepBar): string {
  if (s.status === 'failed') return '#e53935';
  if (s.status === 'rolled-back') return 'url(#hatch)';
  if (s.status === 'started') return '#bdbdbd';
  if (s.meta.gate || s.meta.waitsFor) return '#90caf9';
  return s.changed === false ? '#c8e6c9' : '#66bb6a';
}

/** About eight round tick positions (ms from the start) over SPAN. */
export function ticks(span: number): number[] {
  const raw = span / 8;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let t = 0; t <= span + 1e-9; t += step) out.push(t);
  return out;
}

const f = (n: number) => n.toFixed(1);
const clip = (s: string, n: number) => (s.length <= n ? s : n <= 1 ? '' : `${s.slice(0, n - 1)}…`);
