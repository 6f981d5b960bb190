// Embedded ClickHouse Keeper (facts/clickhouse/keeper.ts): its members are one group of their own
// across the whole run. Two shards restarted in parallel can otherwise take two of three members
// down — quorum lost, every replicated table of the cluster read-only. So, whatever
// --parallel-shards says: at most one member is down at any time (one slot per run); before a
// member stops, the ensemble is healthy (a leader whose followers are all in sync, every member
// answering); after it starts, it is a follower or the leader again before the slot is given back.
import type { RunContext, StepContext, StepResult } from '../../../src/engine/playbook.js';
import type { Host } from '../../../src/inventory/types.js';
import { chClient } from '../../../src/clickhouse/client.js';
import { readQueryFact } from '../../../src/fact.js';
import { keeperState, type KeeperState } from '../../../facts/clickhouse/keeper.js';
import { errorValue, runGate } from './poll.js';

/** Per-host memory: this replica holds the run's Keeper slot (set before its stop, cleared when back). */
export const KEEPER_MEMBER_KEY = 'gates.keeperMember';

/** The run's one slot for a Keeper member being down. */
export class KeeperSlot {
  holder: string | undefined;
  /** Take the slot for HOST (true) or say who has it (false). Synchronous: no two takers race. */
  take(host: string): boolean {
    if (this.holder === undefined || this.holder === host) {
      this.holder = host;
      return true;
    }
    return false;
  }
  release(host: string): void {
    if (this.holder === host) this.holder = undefined;
  }
}

export function keeperSlot(run: RunContext): KeeperSlot {
  let s = run.shared.get('keeper.slot') as KeeperSlot | undefined;
  if (!s) run.shared.set('keeper.slot', (s = new KeeperSlot()));
  return s;
}

/** Whether the ensemble can lose one member: a leader, all its followers in sync, every member answering. */
export function ensembleProblem(members: Array<{ host: string; state?: KeeperState; error?: string }>): string | undefined {
  const down = members.filter((m) => !m.state);
  if (down.length) return `Keeper member(s) not answering: ${down.map((m) => `${m.host} (${m.error})`).join(', ')}`;
  const leader = members.find((m) => m.state!.role === 'leader');
  if (!leader) return `no Keeper leader among ${members.map((m) => `${m.host}: ${m.state!.role}`).join(', ')}`;
  const { followers = 0, syncedFollowers = 0 } = leader.state!;
  if (syncedFollowers < followers) return `leader ${leader.host}: ${syncedFollowers}/${followers} followers in sync`;
  if (followers < members.length - 1) return `leader ${leader.host} has ${followers} follower(s), ${members.length - 1} expected`;
  return undefined;
}

async function stateOf(run: RunContext, h: Host): Promise<KeeperState> {
  const client = await chClient(run, h);
  return readQueryFact(run.handle(h), client, keeperState);
}

/** Before stopping ctx.host: if it carries Keeper, take the run's slot and check the ensemble. */
export function checkKeeperBeforeStop(ctx: StepContext): Promise<StepResult> {
  return runGate(ctx, async (g) => {
    const h = ctx.host.def;
    const self = await stateOf(ctx.run, h);
    if (!self.member) return { changed: false, note: 'no embedded Keeper', data: { keeper: false } };
    const slot = keeperSlot(ctx.run);
    // Nothing of this replica is down yet: a run that stops elsewhere may stop this wait too.
    await g.poll('keeper: one member down at a time', { signal: ctx.run.signal }, async () =>
      slot.take(h.name) ? { ok: true, value: 'slot taken' } : { ok: false, value: `Keeper member ${slot.holder} is down or being restarted` },
    );
    try {
      const cluster = ctx.run.inventory.hosts.filter((x) => x.cluster === h.cluster);
      const out = await g.poll(
        'keeper ensemble healthy',
        { hint: 'the Keeper ensemble must be able to lose this member: see system.zookeeper_connection and the keeper log' },
        async () => {
          const states = await Promise.all(
            cluster.map(async (x) => {
              try {
                return { host: x.name, state: await stateOf(ctx.run, x) };
              } catch (err) {
                return { host: x.name, error: errorValue(err) };
              }
            }),
          );
          const members = states.filter((m) => !m.state || m.state.member);
          const problem = ensembleProblem(members);
          return problem
            ? { ok: false, value: problem }
            : {
                ok: true,
                value: `${members.length} member(s): ${members.map((m) => `${m.host} ${m.state!.role}`).join(', ')}`,
                data: members.map((m) => m.host),
              };
        },
      );
      ctx.memory.set(KEEPER_MEMBER_KEY, true);
      return {
        changed: false,
        note: `Keeper ensemble healthy (${out.value}); ${h.name} holds the run's Keeper slot`,
        data: { keeper: true, members: out.data },
      };
    } catch (err) {
      slot.release(h.name);
      throw err;
    }
  });
}

/** After starting ctx.host: a Keeper member is a follower or the leader again; then the slot is free. */
export function waitKeeperBack(ctx: StepContext): Promise<StepResult> {
  return runGate(ctx, async (g) => {
    const h = ctx.host.def;
    if (!ctx.memory.get<boolean>(KEEPER_MEMBER_KEY)) return { changed: false, note: 'no embedded Keeper', data: { keeper: false } };
    const out = await g.poll('keeper member back', {}, async () => {
      const s = await stateOf(ctx.run, h);
      return { ok: s.role === 'leader' || s.role === 'follower', value: `keeper role ${s.role ?? 'none'}` };
    });
    keeperSlot(ctx.run).release(h.name);
    ctx.memory.set(KEEPER_MEMBER_KEY, false);
    return { changed: false, note: `Keeper member back (${out.value})`, data: { keeper: true } };
  });
}
