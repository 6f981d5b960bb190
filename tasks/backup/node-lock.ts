// The node lock shared by the backup agent and chops: one flock on /run/lock/chops-node.lock per
// node. The agent holds it for a whole backup; a chops run holds it from before it stops a
// node's server until the replica is healthy again. So a backup never runs under a stopped
// server, a stop never cuts a backup in half, and two operators on two control machines cannot
// work on the same node at once.
//
// chops's hold is a small remote process (a detached `sh` with the flock on fd 9) that lives as
// long as the SSH session process of the run's connection: when the run ends, crashes or loses
// its network, sshd's session process exits, the holder sees it within a second and the kernel
// drops the flock. A crashed control machine never leaves a node locked; the run stays resumable
// (the next run takes the lock again before its next stop).
import type { StepContext } from '../../src/engine/playbook.js';
import type { HostHandle } from '../../src/host.js';
import { ChopsError } from '../../src/errors.js';
import { posix } from 'node:path';
import { raw, sh, shq } from '../../src/quote.js';
import { AGENT_PATHS } from '../../templates/backup/paths.js';

export class NodeLockBusy extends ChopsError {}

/** `backup diff pid 123 since …` / `chops run ID …`, or undefined when the lock is free. */
export async function nodeLockHolder(host: HostHandle, lockFile = AGENT_PATHS.lockFile): Promise<string | undefined> {
  // The owner line may be missing while the lock is held (the holder writes it just after taking
  // the flock and removes it just before exiting): "busy" without an owner, not an error.
  const r = await host.probe({
    nothrow: true,
    timeoutMs: 15_000,
  })`if [ ! -e ${lockFile} ] || flock -n ${lockFile} true; then echo free; else echo busy; cat ${lockFile + '.owner'} 2>/dev/null || true; fi`;
  const [state, ...owner] = r.stdout.trim().split('\n');
  if (r.code !== 0 || (state !== 'free' && state !== 'busy'))
    throw new ChopsError(`${host.name}: cannot read the node lock ${lockFile} (exit ${r.code}): ${r.stderr.trim()}`, {
      hint: 'is flock (util-linux) installed on the node?',
    });
  return state === 'busy' ? owner.join(' ').trim() || 'holder unknown' : undefined;
}

// The holder: $1 lock, $2 pid to outlive, $3 wait seconds, $4 who. It answers on stdout (a pipe
// to acquireCommand's reader) — "busy" while it waits, then "held PID" or "timeout" — and then
// lets go of that pipe, so the reader returns the moment the lock is taken.
const HOLDER = [
  'exec 9>>"$1"',
  'if ! flock -n 9; then echo busy; if ! flock -w "$3" 9; then echo timeout; exit 1; fi; fi',
  'printf "%s pid %s since %s\\n" "$4" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$1.owner"',
  'trap \'rm -f "$1.owner"; exit 0\' TERM INT HUP',
  'echo "held $$"; exec >/dev/null',
  // sleep without fd 9: the flock goes with this shell alone
  // (in the background + wait, so a TERM from releaseNodeLock is handled at once)
  'while kill -0 "$2" 2>/dev/null; do sleep 1 9>&- & wait $!; done',
  'rm -f "$1.owner"',
].join('\n');

/**
 * Remote command: start the holder and wait until it holds the lock (exit 0, "held PID") or gives
 * up after WAITSECONDS (exit 4, "timeout" and the owner line). One round trip, no polling; only
 * shell builtins on the way (the ancestor walk reads /proc without forking).
 */
export function acquireCommand(lockFile: string, waitSeconds: number, who: string): string {
  return (
    // the SSH session process of this connection: the nearest sshd ancestor (else our parent)
    'p=$$; sess=$PPID; while [ "$p" -gt 1 ] 2>/dev/null; do c=; read -r c </proc/$p/comm 2>/dev/null; ' +
    'case "$c" in sshd|sshd-session) sess=$p; break;; esac; ' +
    'q=; while read -r k v; do [ "$k" = PPid: ] && { q=$v; break; }; done </proc/$p/status 2>/dev/null; ' +
    '[ -n "$q" ] || break; p=$q; done; ' +
    `mkdir -p ${shq(posix.dirname(lockFile))} || exit 3; ` +
    // `( … & )`: the holder is nobody's child here, setsid makes it its own session (no fork
    // needed outside job control), and its stdout is the pipe to the reader.
    `( setsid sh -c ${sh`${HOLDER}`} chops-node-lock ${sh`${lockFile}`} "$sess" ${String(Math.max(0, Math.floor(waitSeconds)))} ${sh`${who}`} </dev/null 2>/dev/null & ) | ` +
    '{ while read -r s; do case "$s" in held*) echo "$s"; exit 0;; timeout) echo timeout; ' +
    `cat ${sh`${lockFile + '.owner'}`} 2>/dev/null; exit 4;; esac; done; echo 'the lock holder ended without an answer' >&2; exit 3; }`
  );
}

const memKey = (host: string) => `node-lock:${host}`;

/**
 * Take the node lock before WHAT (e.g. "stop clickhouse-server"). One command when the lock is
 * free (the usual case); when a backup holds it, says so and waits up to backup.lock_wait for it;
 * refuses with the holder's line when it is still held after that. Idempotent within a run: a
 * host whose lock this run holds is not locked twice.
 */
export async function takeNodeLock(ctx: StepContext<any>, what: string): Promise<void> {
  const { host } = ctx;
  const lockFile = AGENT_PATHS.lockFile;
  if (ctx.run.shared.has(memKey(host.name))) return;
  const wait = ctx.run.inventory.backup?.lockWaitSeconds ?? 600;
  const who = `chops ${ctx.run.runId ?? 'plan'} (${what})`;
  const attempt = (seconds: number) => host.$({ nothrow: true, timeoutMs: (seconds + 20) * 1000 })`${raw(acquireCommand(lockFile, seconds, who))}`;
  const first = await attempt(0);
  // The holder's answer exists once the command ran. A plan takes no lock (and has none to
  // release): it says instead whether a backup holds the lock now, which a run would wait for.
  let r = await host.whenApplied(undefined, async () => first);
  if (!r) {
    const holder = await nodeLockHolder(host, lockFile);
    if (holder) host.note(`node lock held by ${holder}: a run waits up to ${wait} s for it before ${what}`);
    return;
  }
  if (r.code === 4 && wait > 0) {
    host.note(`node lock held by ${lockOwner(r) ?? 'holder unknown'}: waiting up to ${wait} s before ${what}`);
    r = await attempt(wait);
  }
  const out = r.stdout.trim().split('\n');
  if (r.code === 0 && out[0]?.startsWith('held ')) {
    ctx.run.shared.set(memKey(host.name), Number(out[0].slice(5)));
    return;
  }
  if (r.code !== 4)
    throw new ChopsError(`${host.name}: cannot take the node lock ${lockFile} (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`, {
      hint: 'is flock (util-linux) installed on the node, and /run/lock writable?',
    });
  throw new NodeLockBusy(`${host.name}: node lock ${lockFile} still held after ${wait} s by ${lockOwner(r) ?? 'holder unknown'}: not doing "${what}"`, {
    hint: 'a backup is running on this node: let it finish (chops backup status shows it), or raise backup.lock_wait; then chops resume',
  });
}

/** The owner line acquireCommand prints after "timeout". */
const lockOwner = (r: { stdout: string }): string | undefined => r.stdout.trim().split('\n').slice(1).join(' ').trim() || undefined;

/** Release the lock this run holds on the host (no-op when it holds none). */
export async function releaseNodeLock(ctx: StepContext<any>): Promise<void> {
  const pid = ctx.run.shared.get(memKey(ctx.host.name));
  if (typeof pid !== 'number') return;
  ctx.run.shared.delete(memKey(ctx.host.name));
  // returns once the holder is gone, so the lock is free when the step ends
  await ctx.host.$({
    nothrow: true,
    timeoutMs: 15_000,
  })`kill -TERM ${pid} 2>/dev/null; i=0; while kill -0 ${pid} 2>/dev/null && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; true`;
}
