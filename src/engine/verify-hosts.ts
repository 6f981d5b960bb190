// Before the first change: reach and verify every host a run will touch, and every peer its
// gates will read (issue: a run restarted four replicas of other shards before it found that
// one host's key was unknown).
import type { Host } from '../inventory/types.js';
import { ChopsError, UsageError, errorText, tail } from '../errors.js';
import type { Phase } from './playbook.js';
import type { Session } from './session.js';

const VERIFY_TIMEOUT_MS = 30_000;

/** Hosts the run needs could not be reached/verified before the first change: an input problem (exit 2). */
export class HostsUnverifiedError extends UsageError {}

/**
 * Connections are already opening (Runner.preconnect); this waits for them and has each host
 * answer (Transport.verify: over SSH, the persistent shell every later command uses). Throws one
 * error naming every host that failed and its fix.
 */
export async function verifyHosts(selected: Host[], phases: Phase[], peers: (h: Host) => Host[], session: Session): Promise<void> {
  const need = new Map<string, Host>();
  for (const h of selected) need.set(h.name, h);
  if (phases.some((p) => p.scope === 'rolling')) {
    for (const h of selected) for (const p of peers(h)) need.set(p.name, p);
  }
  const hosts = [...need.values()].filter((h) => h.connection !== 'local');
  const results = await Promise.allSettled(hosts.map((h) => session.handle(h).transport.verify(VERIFY_TIMEOUT_MS)));
  const failed: Array<{ host: Host; why: string; hint?: string }> = [];
  results.forEach((r, i) => {
    const host = hosts[i];
    if (r.status === 'rejected') failed.push({ host, why: errorText(r.reason), hint: r.reason instanceof ChopsError ? r.reason.hint : undefined });
    else if (r.value.code !== 0) failed.push({ host, why: `\`true\` exited ${r.value.code}${r.value.stderr.trim() ? `: ${tail(r.value.stderr, 2)}` : ''}` });
  });
  if (!failed.length) return;
  const role = (h: Host) =>
    selected.includes(h)
      ? 'to be worked on'
      : `peer of ${selected
          .filter((s) => peers(s).includes(h))
          .map((s) => s.name)
          .join(', ')}, read by its gates`;
  const lines = failed.map((f) => `  ${f.host.name} (${role(f.host)}): ${f.why}${f.hint ? `\n    fix: ${f.hint}` : ''}`);
  throw new HostsUnverifiedError(`${failed.length} of ${hosts.length} host(s) could not be reached and verified; nothing was changed:\n${lines.join('\n')}`, {
    hint: 'fix the hosts named above (or leave them out with --limit when they are not needed), then run the same command again',
  });
}
