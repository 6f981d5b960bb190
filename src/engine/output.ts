// How a run talks to its operator: a live display on a terminal (src/engine/live.ts: counts
// per phase, the running and failed hosts by name, redrawn at most 10×/s), one line per event
// for CI/cron/pipes (--output plain), or one JSON object per line for machines (--json).
import type { StepResult } from './playbook.js';
import type { RunEvent } from './events.js';
import { LiveDisplay, type PhaseShape } from './live.js';
import { errorText } from '../errors.js';
import { formatMs } from '../duration.js';
import { redactor } from '../secrets.js';
import { TurnBuffer } from '../run/turn-buffer.js';

export type OutputMode = 'tty' | 'plain' | 'json';

export interface Output {
  mode: OutputMode;
  /** The run's phases, hosts and steps are known: a live display starts drawing. */
  begin(shape: PhaseShape[]): void;
  /** The runner is done: the live display leaves its last state on screen. Idempotent. */
  end(): void;
  event(ev: RunEvent): void;
  stepStart(host: string, phase: string, step: string): void;
  stepDone(host: string, phase: string, step: string, ms: number, r: StepResult): void;
  stepFailed(host: string, phase: string, step: string, err: unknown, ms: number): void;
  /** A step not run (already done in a resumed run, or the run is stopping). */
  stepSkipped(host: string, phase: string, step: string, reason: string): void;
  note(host: string, step: string, text: string): void;
  /** For the operator at once, on stderr, above a live display (the Ctrl-C acknowledgment). */
  notice(s: string): void;
  /** Human text (summaries, tables); JSON mode sends it to stderr so stdout stays parseable. */
  text(s: string): void;
}

export function chooseOutput(flag: string | undefined, json: boolean, stream: NodeJS.WriteStream = process.stdout): OutputMode {
  if (json || flag === 'json') return 'json';
  if (flag === 'plain') return 'plain';
  if (flag === 'tty' || flag === 'default') return 'tty';
  return stream.isTTY && process.env.TERM !== 'dumb' && !process.env.CI ? 'tty' : 'plain';
}

export function makeOutput(
  mode: OutputMode,
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
  opts: { quietSteps?: boolean } = {},
): Output {
  // The live display exists only on a terminal, and not for a plan (the plan is the output).
  const live = mode === 'tty' && !opts.quietSteps ? new LiveDisplay(out as NodeJS.WriteStream, err) : undefined;
  const ts = clockTime();
  // Lines (plain and JSON) of one event-loop turn go out in one write (two lines per step per
  // host otherwise: ~400 writes on the 20-host fan-out), like the run log's (src/run/turn-buffer.ts).
  // A step's "ok" line is made only once its "done" is in the journal, so a buffered line never
  // runs ahead of the state. A SIGKILL may cost the lines of the turn it lands in: those steps
  // are done in the state (a resume skips them; the run log and `chops report` show them), but
  // this output never said so. Text for stderr flushes the buffer first (the order the operator
  // reads), and so does end().
  const lines = mode === 'tty' ? undefined : new TurnBuffer((text) => out.write(text));
  const write = (text: string) => (lines ? lines.write(text) : out.write(text));
  // Everything shown passes the redactor: command output may echo a secret chops has read.
  const json = (ev: RunEvent) => write(redactor.redact(JSON.stringify({ ts: new Date().toISOString(), ...ev })) + '\n');
  const plain = (s: string) => {
    if (!opts.quietSteps) write(redactor.redact(`${ts()} ${s}`) + '\n');
  };
  return {
    mode,
    begin(shape) {
      live?.begin(shape);
    },
    end() {
      lines?.flush();
      live?.end();
    },
    event(ev) {
      if (mode === 'json') json(ev);
      else if (live) {
        if (ev.type === 'progress') live.note(ev.host, redactor.redact(ev.text));
        else if (ev.type === 'warning')
          live.commit(redactor.redact(`⚠ ${ev.host ? `${ev.host}: ` : ''}${ev.gate ?? ''}${ev.text ? ` ${ev.text}` : ''}${ev.count ? ` (${ev.count})` : ''}`));
        else if (ev.type === 'rollback')
          live.commit(
            redactor.redact(
              ev.ok ? `↶ ${ev.host}: rolled back "${ev.step}"` : `✖ ${ev.host}: ROLLBACK FAILED "${ev.step}": ${ev.error} — the host needs manual attention`,
            ),
          );
      }
    },
    stepStart(host, phase, step) {
      if (mode === 'json') json({ type: 'step-start', host, phase, step });
      else if (mode === 'plain') plain(`${host} > ${step}`);
      else live?.stepStart(host, phase, step);
    },
    // Said in every mode: a resumed run's output shows what it passed over, not only what it ran
    // (the state keeps every step's record).
    stepSkipped(host, phase, step, reason) {
      if (mode === 'json') json({ type: 'step-skipped', host, phase, step, reason });
      else if (mode === 'plain') plain(`${host} skip ${step} (${reason})`);
      else live?.stepEnd(host, phase, step, reason);
    },
    stepDone(host, phase, step, ms, r) {
      const rr = r ?? {};
      if (mode === 'json') {
        json({
          type: 'step-done',
          host,
          phase,
          step,
          durationMs: round(ms),
          changed: rr.skipped ? false : (rr.changed ?? true),
          skipped: rr.skipped,
          note: rr.note,
        });
        if (rr.data !== undefined) json({ type: 'result', host, phase, step, data: rr.data });
      } else if (mode === 'plain') {
        const what = rr.skipped ? `unchanged: ${rr.skipped}` : rr.changed === false ? 'unchanged' : 'ok';
        plain(`${host} ok ${step} (${formatMs(ms)}, ${what}${rr.note ? `; ${rr.note}` : ''})`);
      } else live?.stepEnd(host, phase, step, redactor.redact(rr.skipped ?? rr.note ?? ''));
    },
    stepFailed(host, phase, step, e, ms) {
      if (mode === 'json') json({ type: 'step-failed', host, phase, step, durationMs: round(ms), error: errorText(e) });
      else if (mode === 'plain') plain(`${host} FAILED ${step} (${formatMs(ms)}): ${errorText(e)}`);
      else live?.stepEnd(host, phase, step, undefined, redactor.redact(errorText(e)));
    },
    note(host, step, text) {
      if (mode === 'json') json({ type: 'note', host, step, text });
      else if (mode === 'plain') plain(`${host}   ${step}: ${text}`);
      else live?.note(host, redactor.redact(text));
    },
    notice(s) {
      const t = redactor.redact(s);
      if (live) live.notice(t);
      else {
        lines?.flush();
        err.write(t.endsWith('\n') ? t : t + '\n');
      }
    },
    text(s) {
      const t = redactor.redact(s);
      const line = t.endsWith('\n') ? t : t + '\n';
      if (live && mode !== 'json') live.commit(t);
      else if (mode === 'json') {
        lines?.flush();
        err.write(line);
      } else write(line);
    },
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/**
 * HH:MM:SS.mmm (UTC) of now, for plain lines: the seconds formatted once per second (a Date and
 * toISOString per line were ~6 µs of two lines per step per host).
 */
export function clockTime(now: () => number = Date.now): () => string {
  let sec = Number.NaN;
  let prefix = '';
  return () => {
    const t = now();
    const s = Math.floor(t / 1000);
    if (s !== sec) {
      sec = s;
      prefix = new Date(s * 1000).toISOString().slice(11, 20);
    }
    const ms = t - s * 1000;
    return prefix + (ms < 10 ? '00' : ms < 100 ? '0' : '') + ms;
  };
}
