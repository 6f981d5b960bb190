// How a command string becomes what the remote login shell is asked to run. Commands always run
// under POSIX `sh -c` (never relying on the login shell's dialect), through `sudo -n` (never
// prompting) when the host needs it, and under a remote `timeout` so a hung command cannot
// outlive its deadline even if the channel signal is ignored.
import { shq } from '../quote.js';

export function wrapCommand(command: string, opts: { sudo?: boolean; timeoutMs?: number; stdin?: boolean } = {}): string {
  let cmd = opts.timeoutMs && opts.timeoutMs > 0 ? wrapDeadline(command, opts.timeoutMs) : `sh -c ${shq(command)}`;
  if (opts.sudo) cmd = `sudo -n -- ${cmd}`;
  // Without input the command reads /dev/null: nothing can hang waiting for stdin, and the
  // transport need not send an EOF packet per command (one round trip less on the wire).
  if (!opts.stdin) cmd += ' </dev/null';
  return cmd;
}

/**
 * COMMAND under a remote deadline: `timeout` sends TERM at TIMEOUTMS (rounded up to whole
 * seconds), KILL 5 s later, and exits 124. Without a deadline, COMMAND as it is (the persistent
 * shell runs it in a subshell of its own).
 */
export function wrapDeadline(command: string, timeoutMs?: number): string {
  if (!timeoutMs || timeoutMs <= 0) return command;
  return `timeout -k 5 ${Math.max(1, Math.ceil(timeoutMs / 1000))} sh -c ${shq(command)}`;
}

/** Shell snippet that writes stdin to DEST atomically (temp file in the same dir, then rename). */
export function putCommand(dest: string, opts: { mode: string; owner?: string; group?: string }): string {
  if (!/^[0-7]{3,4}$/.test(opts.mode)) throw new TypeError(`file mode must be an octal string like "0644", got ${JSON.stringify(opts.mode)}`);
  const own = [opts.owner ? `-o ${shq(opts.owner)}` : '', opts.group ? `-g ${shq(opts.group)}` : ''].filter(Boolean).join(' ');
  const d = shq(dest);
  return (
    `t=$(dirname -- ${d})/.chops-put.$$ && ` +
    `{ install -m ${opts.mode} ${own ? own + ' ' : ''}/dev/stdin "$t" && mv -f -- "$t" ${d}; } || { rc=$?; rm -f -- "$t"; exit $rc; }`
  );
}
