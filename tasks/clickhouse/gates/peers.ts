// Gate before stopping a replica: every OTHER replica of its shard (from the inventory) is a
// healthy, caught-up replica (facts/clickhouse/replicas.ts) that sees all replicas active.
import type { StepContext, StepResult } from '../../../src/engine/playbook.js';
import type { HostHandle } from '../../../src/host.js';
import type { Host } from '../../../src/inventory/types.js';
import { chClient, type ChClient } from '../../../src/clickhouse/client.js';
import { ClickHouseError } from '../../../src/clickhouse/errors.js';
import { readQueryFact } from '../../../src/fact.js';
import { replicaProblems, replicaRows, replicaRowsArg, shardProblems, summarizeReplicas, type ReplicaRow } from '../../../facts/clickhouse/replicas.js';
import { serverCapabilities } from '../../../facts/clickhouse/capabilities.js';
import { serviceState, type ServiceState } from '../service.js';
import { allOrFirstError, errorValue, refusal, runGate, type GateCheck, type GateRun } from './poll.js';

export interface PeerReport {
  host: string;
  tables: number;
  queueSize: number;
  maxDelay: number;
  passed: boolean;
  value: string;
}

/**
 * Before stopping ctx.host: every other replica of its shard answers, and is a healthy, caught-up
 * replica seeing all replicas active. A peer whose service is not running (or whose host does not
 * answer ssh) fails at once; so does this replica being down itself (its peers then see it
 * inactive, and the diagnosis names it, not them).
 */
export function checkPeersBeforeStop(ctx: StepContext): Promise<StepResult> {
  return runGate(ctx, async (g) => {
    const self = ctx.host.def;
    const peers = ctx.run.peers(self);
    if (peers.length === 0) {
      // Nothing to protect: a single-replica shard is offline while its only replica is down.
      return { changed: false, note: `no other replica in shard ${self.shardName}: stopping ${self.name} takes the shard offline`, data: { peers: [] } };
    }
    const reports = await allOrFirstError(peers, (p, signal) => checkOnePeer(g, p, signal));
    return {
      changed: false,
      note: `peers healthy: ${reports.map((r) => `${r.host} (queue ${r.queueSize}, delay ${r.maxDelay}s)`).join(', ')}`,
      data: { peers: reports },
    };
  });
}

const DOWN: Array<ServiceState | 'unreachable'> = ['inactive', 'failed', 'unreachable'];

async function checkOnePeer(g: GateRun, peer: Host, signal: AbortSignal): Promise<PeerReport> {
  const { ctx } = g;
  const self = ctx.host.def;
  const ph = ctx.run.handle(peer);
  const refuse = (why: string) => `refusing to stop ${self.name}: its peer ${peer.name} (shard ${peer.shardName}) is down/unhealthy: ${why}`;
  const hint = `bring ${peer.name} back to a healthy, caught-up replica first (chops status), then rerun/resume`;

  // A stopped peer cannot become healthy by waiting: fail fast. `unknown` (custom status command
  // output, or systemctl missing) falls through to the wait.
  const st = await serviceOf(ph);
  if (DOWN.includes(st.state)) throw refusal(self.name, 'peers healthy', `${peer.name}: ${st.detail}`, refuse(st.detail), hint);

  let client: ChClient;
  try {
    client = await chClient(ctx.run, peer);
  } catch (err) {
    throw refusal(
      self.name,
      'peers healthy',
      `${peer.name}: ${errorValue(err)}`,
      refuse(`cannot open a ClickHouse connection: ${(err as Error).message}`),
      hint,
    );
  }

  const outcome = await g.poll(
    'peers healthy',
    {
      hint,
      signal,
      timeoutMessage: (budget) =>
        `not passed after ${budget}: refusing to stop ${self.name} while its peer ${peer.name} (shard ${peer.shardName}) is unhealthy or behind`,
    },
    async (): Promise<GateCheck<PeerReport>> => {
      let rows: ReplicaRow[];
      try {
        // replica_is_active where the peer has it: the message names the inactive replica.
        const caps = await serverCapabilities(client, ctx.run.emit);
        rows = await readQueryFact(ph, client, replicaRows, replicaRowsArg(caps));
      } catch (err) {
        if (err instanceof ClickHouseError && err.kind === 'connection') {
          const again = await serviceOf(ph);
          if (DOWN.includes(again.state)) return { ok: false, value: `${peer.name}: ${again.detail}`, fatal: refuse(again.detail) };
          return { ok: false, value: `${peer.name}: server not answering (service ${again.state})` };
        }
        throw err;
      }
      const s = summarizeReplicas(rows);
      const problems = replicaProblems(rows, g.gates).map((p) => p.text);
      const inactive = shardProblems(rows);
      if (inactive.length && !problems.length) {
        // The inactive replica may be this one: then the peer is fine and the diagnosis names us.
        const mine = await serviceOf(ctx.host);
        if (DOWN.includes(mine.state)) {
          return {
            ok: false,
            value: `${self.name}: ${mine.detail}`,
            fatal: `${self.name} itself is down (${mine.detail}): the inactive replica ${peer.name} sees is ${self.name}`,
            fatalHint: `start ${self.name} and wait until it is healthy (the check-peers step of rolling-restart and exec --rolling does this first), then rerun/resume`,
          };
        }
      }
      problems.push(...inactive);
      const value = problems.length ? `${peer.name}: ${problems.join('; ')}` : `${peer.name}: queue_size=${s.queueSize}, absolute_delay=${s.maxDelay}`;
      const report: PeerReport = { host: peer.name, tables: s.tables, queueSize: s.queueSize, maxDelay: s.maxDelay, passed: problems.length === 0, value };
      return { ok: problems.length === 0, value, data: report };
    },
  );
  return outcome.data!;
}

async function serviceOf(h: HostHandle): Promise<{ state: ServiceState | 'unreachable'; detail: string }> {
  try {
    const state = await serviceState(h);
    return { state, detail: `service ${h.def.clickhouse.service} is ${state}` };
  } catch (err) {
    return { state: 'unreachable', detail: `host does not answer over ssh: ${(err as Error).message.split('\n')[0]}` };
  }
}
