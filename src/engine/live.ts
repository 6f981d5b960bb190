// The live display on a terminal: chops' own renderer, driven by the run's step calls and typed
// events, not listr2's default renderer. That one re-rendered the whole task tree (every host,
// every step) on every event: 43–49 s and 16 s of CPU for 20 hosts × 10 commands against ~1.1 s
// with --output plain (issue 8 #10). Here an event only updates a counter or one host's line;
// the screen is redrawn at most 10×/s, a frame is at most one screen high, and a finished phase,
// a failure or a notice is written once above the frame and never redrawn again. So the cost is
// bounded by the frame rate, not by hosts × events.
//
// Frame (per phase with counts; only running and failed hosts by name):
//   ✔ preflight (once): 1/1 done in 0.3 s
//   ⠋ commands (each host in parallel): 187/200 done, 2 running, 1 failed, 10 waiting
//       h12 › #3 $ date +%s (1.2 s)
//       h13 › #9 $ ls /etc/ssh
//       … 3 more running
import { formatDuration } from '../format.js';

export interface PhaseShape {
  name: string;
  /** "each host in parallel", "rolling: …", "once". */
  scope: string;
  steps: string[];
  hosts: string[];
  /** Rolling phases: the shard of each host, shown on its running line. */
  group?: Record<string, string>;
}

type HostState = 'waiting' | 'running' | 'done' | 'failed';
interface HostLine {
  state: HostState;
  step?: string;
  note?: string;
  since: number;
  steps: number;
  lastNote?: string;
}
interface PhaseLive {
  shape: PhaseShape;
  hosts: Map<string, HostLine>;
  counts: Record<HostState, number>;
  started?: number;
  /** Written above the frame for good (finished); never redrawn. */
  committed: boolean;
}

const SPIN = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/** A phase this small gets one permanent line per finished host (a runbook-sized run reads like a log). */
const HOST_LINES_UP_TO = 24;
const FRAME_MS = 100;

export class LiveDisplay {
  private phases = new Map<string, PhaseLive>();
  private order: PhaseLive[] = [];
  private drawn = 0; // lines of the frame now on screen
  private dirty = false;
  private timer?: NodeJS.Timeout;
  private tick = 0;
  private active = false;
  private readonly color: boolean;
  private readonly restoreCursor = () => this.out.write('\x1b[?25h');

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {
    this.color = !process.env.NO_COLOR && process.env.TERM !== 'dumb';
  }

  begin(shape: PhaseShape[]): void {
    for (const s of shape) {
      const p: PhaseLive = { shape: s, hosts: new Map(), counts: { waiting: s.hosts.length, running: 0, done: 0, failed: 0 }, committed: false };
      for (const h of s.hosts) p.hosts.set(h, { state: 'waiting', since: 0, steps: 0 });
      this.phases.set(s.name, p);
      this.order.push(p);
    }
    this.active = true;
    this.out.write('\x1b[?25l');
    process.once('exit', this.restoreCursor);
    this.timer = setInterval(() => this.frame(), FRAME_MS);
    this.timer.unref();
    this.draw();
  }

  stepStart(host: string, phase: string, step: string): void {
    const p = this.phases.get(phase);
    const h = p?.hosts.get(host);
    if (!p || !h) return;
    p.started ??= Date.now();
    if (h.state === 'waiting') this.move(p, h, 'running');
    h.step = step;
    h.note = undefined;
    h.since = Date.now();
    this.dirty = true;
  }

  stepEnd(host: string, phase: string, step: string, note: string | undefined, failed?: string): void {
    const p = this.phases.get(phase);
    const h = p?.hosts.get(host);
    if (!p || !h) return;
    h.steps++;
    if (note) h.lastNote = `${step}: ${note}`;
    if (failed !== undefined) {
      this.move(p, h, 'failed');
      this.commit(`${this.paint('31', '✖')} ${host} › ${step}: ${failed}`);
    } else if (step === p.shape.steps.at(-1) && h.state !== 'failed') {
      this.move(p, h, 'done');
      if (p.hosts.size <= HOST_LINES_UP_TO && p.shape.hosts.length > 1) {
        this.commit(`${this.paint('32', '✔')} ${host} (${h.steps} step${h.steps === 1 ? '' : 's'})${h.lastNote ? `: ${h.lastNote}` : ''}`);
      }
    }
    this.finishPhases();
    this.dirty = true;
  }

  note(host: string, text: string): void {
    for (const p of this.order) {
      const h = p.hosts.get(host);
      if (h?.state === 'running') {
        h.note = text;
        this.dirty = true;
      }
    }
  }

  /** Written once above the frame (failures, rollbacks, warnings, the Ctrl-C acknowledgment). */
  commit(text: string, to: NodeJS.WritableStream = this.out): void {
    if (!this.active) {
      to.write(text.endsWith('\n') ? text : `${text}\n`);
      return;
    }
    this.clear();
    const lines = text.replace(/\n$/, '').split('\n');
    // Text for the operator is kept whole (a resume command must stay copyable; lines that
    // wrap are not redrawn, so wrapping is harmless here); only the frame is cut to the width.
    to.write(`${lines.map((l) => sanitize(l, Number.MAX_SAFE_INTEGER)).join('\n')}\n`);
    this.draw();
  }

  notice(text: string): void {
    this.commit(text, this.err);
  }

  /** Leave the last state on screen (each phase as one line), stop redrawing. Idempotent. */
  end(): void {
    if (!this.active) return;
    clearInterval(this.timer);
    this.clear();
    const lines = this.order.filter((p) => !p.committed).map((p) => this.header(p, true));
    this.active = false;
    if (lines.length) this.out.write(`${lines.join('\n')}\n`);
    this.restoreCursor();
    process.removeListener('exit', this.restoreCursor);
  }

  private move(p: PhaseLive, h: HostLine, to: HostState): void {
    p.counts[h.state]--;
    p.counts[to]++;
    h.state = to;
  }

  /** A phase whose hosts have all finished is written once and leaves the frame. */
  private finishPhases(): void {
    for (const p of this.order) {
      if (p.committed || p.counts.waiting || p.counts.running) continue;
      p.committed = true;
      this.commit(this.header(p, true));
    }
  }

  private frame(): void {
    this.tick++;
    const running = this.order.some((p) => p.counts.running > 0);
    if (!this.dirty && !running) return;
    this.clear();
    this.draw();
  }

  private header(p: PhaseLive, final = false): string {
    const c = p.counts;
    const total = p.hosts.size;
    const parts = [`${c.done}/${total} done`];
    if (c.running) parts.push(`${c.running} running`);
    if (c.failed) parts.push(`${c.failed} failed`);
    if (c.waiting) parts.push(final ? `${c.waiting} not run` : `${c.waiting} waiting`);
    const icon = c.failed
      ? this.paint('31', '✖')
      : !c.waiting && !c.running
        ? this.paint('32', '✔')
        : final
          ? this.paint('33', '◼')
          : c.running
            ? this.paint('36', SPIN[this.tick % SPIN.length])
            : ' ';
    const took = final && p.started && !c.waiting && !c.running ? ` in ${formatDuration(Date.now() - p.started)}` : '';
    return `${icon} ${p.shape.name} (${p.shape.scope}): ${parts.join(', ')}${took}`;
  }

  private draw(): void {
    this.dirty = false;
    if (!this.active) return;
    const w = this.width();
    // One line is left free: the cursor rests below the frame, and a frame that reached the
    // top of the screen could not be erased by moving up.
    const room = Math.max(2, this.height() - 1);
    const lines: string[] = [];
    const now = Date.now();
    for (const p of this.order) {
      if (p.committed) continue;
      if (!p.started && lines.length) continue; // phases to come: not yet interesting
      lines.push(this.header(p));
      const running = [...p.hosts].filter(([, h]) => h.state === 'running');
      const free = Math.max(1, room - lines.length - 1);
      const show = running.length > free ? free - 1 : running.length;
      for (const [name, h] of running.slice(0, show)) {
        const t = now - h.since >= 1000 ? this.paint('2', ` (${formatDuration(now - h.since)})`) : '';
        const where = p.shape.group?.[name] ? `${p.shape.group[name]} ▸ ` : '';
        lines.push(`    ${where}${name} › ${h.step ?? ''}${h.note ? `: ${h.note}` : ''}${t}`);
      }
      if (running.length > show) lines.push(`    … ${running.length - show} more running`);
      if (lines.length >= room) break;
    }
    const frame = lines.slice(0, room).map((l) => sanitize(l, w - 2));
    if (frame.length) this.out.write(`${frame.join('\n')}\n`);
    this.drawn = frame.length;
  }

  /** Erase the frame: up to its first line, then clear to the end of the screen. */
  private clear(): void {
    if (this.drawn) this.out.write(`\x1b[${this.drawn}F\x1b[J`);
    this.drawn = 0;
  }

  // A pty without a size (cols=0 rows=0, e.g. some CI runners or `script` without stty) still
  // gets a display: assume 80×24.
  private width(): number {
    return this.out.columns > 0 ? this.out.columns : 80;
  }

  private height(): number {
    return this.out.rows > 0 ? this.out.rows : 24;
  }

  private paint(code: string, s: string): string {
    return this.color ? `\x1b[${code}m${s}\x1b[0m` : s;
  }
}

/**
 * One screen line of at most MAX columns: control characters from command output are made
 * visible (a stray ESC or CR would move the cursor and break the frame's line count); our own
 * colour codes are kept and not counted. Wide (CJK, emoji) characters count two columns.
 */
export function sanitize(line: string, max: number): string {
  let out = '';
  let cols = 0;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (ch === '\x1b') {
      const m = /^\x1b\[[0-9;]*m/.exec(line.slice(i, i + 12));
      if (m) {
        out += m[0];
        i += m[0].length - 1;
        continue;
      }
    }
    const cp = line.codePointAt(i)!;
    if (cp > 0xffff) i++;
    const text = cp < 0x20 || (cp >= 0x7f && cp < 0xa0) ? '?' : String.fromCodePoint(cp);
    const wcols = isWide(cp) ? 2 : 1;
    if (cols + wcols > max) {
      out += '…';
      break;
    }
    out += text;
    cols += wcols;
  }
  return out.includes('\x1b[') ? `${out}\x1b[0m` : out;
}

function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}
