// How a run talks to its operator: listr2's live tree on a terminal, one line per event for
// CI/cron/pipes (--output plain), or one JSON object per line for machines (--json).
import type { StepResult } from './playbook.js';
import type { RunEvent } from './events.js';
import { errorText } from '../errors.js';
import { formatMs } from '../duration.js';
import { redactor } from '../secrets.js';

export type OutputMode = 'tty' | 'plain' | 'json';

export interface Output {
  mode: OutputMode;
  listrRenderer: 'default' | 'silent';
  event(ev: RunEvent): void;
  stepStart(host: string, phase: string, step: string): void;
  stepDone(host: string, phase: string, step: string, ms: number, r: StepResult): void;
  stepFailed(host: string, phase: string, step: string, err: unknown, ms: number): void;
  note(host: string, step: string, text: string): void;
  /** Human text (summaries, tables); JSON mode sends it to stderr so stdout stays parseable. */
  text(s: string): void;
}

export function chooseOutput(flag: string | undefined, json: boolean, stream: NodeJS.WriteStream = process.stdout): OutputMode {
  if (json || flag === 'json') return 'json';
  if (flag === 'plain') return 'plain';
  if (flag === 'tty' || flag === 'default') return 'tty';
  return stream.isTTY && process.env.TERM !== 'dumb' && !process.env.CI ? 'tty' : 'plain';
}

export function makeOutput(mode: OutputMode, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr, opts: { quietSteps?: boolean } = {}): Output {
  const ts = () => new Date().toISOString().slice(11, 23);
  // Everything shown passes the redactor: command output may echo a secret chops has read.
  const json = (ev: RunEvent) => out.write(redactor.redact(JSON.stringify({ ts: new Date().toISOString(), ...ev })) + '\n');
  const plain = (s: string) => {
    if (!opts.quietSteps) out.write(redactor.redact(`${ts()} ${s}`) + '\n');
  };
  return {
    mode,
    listrRenderer: mode === 'tty' && !opts.quietSteps ? 'default' : 'silent',
    event(ev) {
      if (mode === 'json') json(ev);
    },
    stepStart(host, phase, step) {
      if (mode === 'json') json({ type: 'step-start', host, phase, step });
      else if (mode === 'plain') plain(`${host} > ${step}`);
    },
    stepDone(host, phase, step, ms, r) {
      const rr = r ?? {};
      if (mode === 'json') {
        json({ type: 'step-done', host, phase, step, durationMs: round(ms), changed: rr.skipped ? false : rr.changed ?? true, skipped: rr.skipped, note: rr.note });
        if (rr.data !== undefined) json({ type: 'result', host, phase, step, data: rr.data });
      } else if (mode === 'plain') {
        const what = rr.skipped ? `unchanged: ${rr.skipped}` : rr.changed === false ? 'unchanged' : 'ok';
        plain(`${host} ok ${step} (${formatMs(ms)}, ${what}${rr.note ? `; ${rr.note}` : ''})`);
      }
    },
    stepFailed(host, phase, step, e, ms) {
      if (mode === 'json') json({ type: 'step-failed', host, phase, step, durationMs: round(ms), error: errorText(e) });
      else if (mode === 'plain') plain(`${host} FAILED ${step} (${formatMs(ms)}): ${errorText(e)}`);
    },
    note(host, step, text) {
      if (mode === 'json') json({ type: 'note', host, step, text });
      else if (mode === 'plain') plain(`${host}   ${step}: ${text}`);
    },
    text(s) {
      const t = redactor.redact(s);
      (mode === 'json' ? err : out).write(t.endsWith('\n') ? t : t + '\n');
    },
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
