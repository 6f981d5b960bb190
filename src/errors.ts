// Errors that carry what the operator needs next: where, what, and the fix.

/** Base class: `exitCode` decides the process exit status; `hint` is the next action. */
export class ChopsError extends Error {
  exitCode = 1;
  hint?: string;
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause ? { cause: opts.cause } : undefined);
    this.name = new.target.name;
    this.hint = opts.hint;
  }
}

/** Bad usage or bad input (inventory, flags, cron expression): exit code 2, nothing changed. */
export class UsageError extends ChopsError {
  override exitCode = 2;
}

/** A remote/local command exited non-zero. */
export class CommandError extends ChopsError {
  constructor(
    readonly host: string,
    readonly command: string,
    readonly code: number,
    readonly stdout: string,
    readonly stderr: string,
    opts: { hint?: string } = {},
  ) {
    super(`${host}: command exited ${code}: ${command}${tail(stderr) ? `\n  stderr: ${tail(stderr)}` : ''}`, opts);
  }
}

/** Could not reach or authenticate to a host, or its key is unknown/changed. */
export class ConnectError extends ChopsError {
  constructor(
    readonly host: string,
    message: string,
    opts: { hint?: string; cause?: unknown } = {},
  ) {
    super(`${host}: ${message}`, opts);
  }
}

/** A health gate did not pass before its deadline. */
export class GateError extends ChopsError {
  constructor(
    readonly host: string,
    readonly gate: string,
    readonly lastValue: string,
    /** Why the gate failed ("not passed after 5.0 s", or what made waiting pointless). */
    readonly reason: string,
    opts: { hint?: string } = {},
  ) {
    super(`${host}: gate "${gate}" ${reason} (last value: ${lastValue})`, opts);
  }
}

/** Last few lines of a stream, for one-line error messages. */
export function tail(text: string, lines = 5): string {
  const t = text.trimEnd();
  if (!t) return '';
  return t.split('\n').slice(-lines).join('\n          ');
}

/** One line for an error of any kind, as the run log, the state file and the failure report show it. */
export function errorText(err: unknown): string {
  if (err instanceof CommandError) return `command exited ${err.code}: ${err.command}${err.stderr.trim() ? ` — stderr: ${tail(err.stderr, 3)}` : ''}`;
  if (err instanceof ChopsError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
