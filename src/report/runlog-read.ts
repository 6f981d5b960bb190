// Reading a run log back (src/run/runlog.ts writes it): commands with their host, step, exit
// code and stderr tail; structured records (`event {json}`: run events, step data, notes);
// free-form lines. Lines it does not recognise are kept as free-form text, never dropped.

export interface LoggedCommand {
  at: number;
  host: string;
  step?: string;
  kind: string;
  code: number;
  durationMs?: number;
  command: string;
  /** Last stderr lines (the log keeps up to 64 KiB; a report needs the tail). */
  stderrTail: string[];
}

export interface LoggedRecord {
  at: number;
  type: string;
  host?: string;
  phase?: string;
  step?: string;
  [key: string]: unknown;
}

export interface LoggedText {
  at: number;
  text: string;
}

export interface ParsedLog {
  commands: LoggedCommand[];
  records: LoggedRecord[];
  texts: LoggedText[];
}

const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (.*)$/;
const COMMAND = /^host=(\S+)(?: step=("(?:[^"\\]|\\.)*"))?(?: kind=(\w+))? exit=(-?\d+) (\S+) \$ (.*)$/;
const TAIL = 5;

export function parseRunLog(text: string): ParsedLog {
  const out: ParsedLog = { commands: [], records: [], texts: [] };
  let lastCmd: LoggedCommand | undefined;
  let lastText: LoggedText | undefined;
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) {
      if (lastCmd && line.startsWith('  ! ')) {
        lastCmd.stderrTail.push(line.slice(4));
        if (lastCmd.stderrTail.length > TAIL) lastCmd.stderrTail.shift();
      } else if (lastText && line.startsWith('  ')) lastText.text += `\n${line.slice(2)}`;
      continue;
    }
    const at = Date.parse(m[1]);
    const rest = m[2];
    lastCmd = undefined;
    lastText = undefined;
    if (rest.startsWith('event {')) {
      try {
        const r = JSON.parse(rest.slice(6));
        if (r && typeof r === 'object' && !Array.isArray(r)) {
          out.records.push({ ...r, type: String(r.type ?? 'event'), at });
          continue;
        }
      } catch {
        /* not JSON after all: keep it as text */
      }
    }
    const c = COMMAND.exec(rest);
    if (c) {
      lastCmd = {
        at,
        host: c[1],
        step: c[2] ? JSON.parse(c[2]) : undefined,
        kind: c[3] ?? 'exec',
        code: Number(c[4]),
        durationMs: parseLoggedDuration(c[5]),
        command: c[6],
        stderrTail: [],
      };
      out.commands.push(lastCmd);
      continue;
    }
    lastText = { at, text: rest };
    out.texts.push(lastText);
  }
  return out;
}

/** "1.2ms", "2.00s", "1m3.0s" (formatDuration in runlog.ts) back to milliseconds. */
export function parseLoggedDuration(s: string): number | undefined {
  let m = /^(\d+(?:\.\d+)?)ms$/.exec(s);
  if (m) return Number(m[1]);
  m = /^(\d+(?:\.\d+)?)s$/.exec(s);
  if (m) return Number(m[1]) * 1000;
  m = /^(\d+)m(\d+(?:\.\d+)?)s$/.exec(s);
  if (m) return Number(m[1]) * 60_000 + Number(m[2]) * 1000;
  return undefined;
}
