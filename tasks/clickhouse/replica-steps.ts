// The steps every piece of rolling work on a replica is wrapped in: check the topology once,
// check the peers and the replica itself before taking it down, stop/start the server, and wait
// until it is a healthy, caught-up replica again before the next replica of its shard goes.
// Shared by `rolling-restart` and `exec --rolling`.
import type { Step, StepContext, StepResult } from '../../src/engine/playbook.js';
import type { HostHandle } from '../../src/host.js';
import { checkPeersBeforeStop, checkSelfBeforeStop, checkTopology, waitReplicaHealthy } from './gates.js';
import { serviceState, startService, stopService, type ServiceState } from './service.js';
import { checkKeeperBeforeStop, waitKeeperBack } from './gates/keeper.js';
import type { ChClient } from '../../src/clickhouse/client.js';
import { formatDuration } from '../../src/format.js';
import { releaseNodeLock, takeNodeLock } from '../backup/node-lock.js';

// Gates take the plain StepContext; steps here work for any playbook's parameters.
const gateCtx = (ctx: StepContext<any>): StepContext => ctx as StepContext;

/**
 * Phase.replicaServing for rolling work on ClickHouse replicas: the server is running. A resumed
 * run asks it before trusting gates that passed before the crash (see src/engine/playbook.ts).
 */
export async function clickhouseServing(ctx: StepContext<any>): Promise<boolean> {
  return (await serviceState(ctx.host)) === 'active';
}

export const checkTopologyStep: Step = {
  name: 'check topology',
  gate: true,
  description: 'inventory == system.macros / system.clusters of every node',
  run: (ctx) => checkTopology(gateCtx(ctx)),
};

/**
 * Steady state first: a replica of the run whose server is already stopped (crashed, or left down
 * by an interrupted run) is started and waited for until healthy before anything else — its
 * shard already runs without it, and its peers' gate would otherwise wait the whole deadline
 * and blame a healthy peer for the inactive replica it sees. Then the peers gate.
 */
export const checkPeersStep: Step = {
  name: 'check peers',
  gate: true,
  description: 'the other replicas of the shard are up, writable and caught up',
  run: async (ctx) => {
    const state = await serviceState(ctx.host);
    if (state !== 'inactive' && state !== 'failed') {
      const peers = await checkPeersBeforeStop(gateCtx(ctx));
      if (state === 'active') ctx.run.shared.set(servingKey(ctx.host), true);
      return peers;
    }
    const since = new Date();
    rememberRestart(ctx, since);
    await startService(ctx.host);
    const healthy = await waitReplicaHealthy(gateCtx(ctx), { since });
    // A plan made no start: its peers still see this replica down, which the run would not.
    const peers = await ctx.host.whenApplied<StepResult>(undefined, () => checkPeersBeforeStop(gateCtx(ctx)));
    return {
      changed: true,
      note: `${ctx.host.name} was ${state}: started it first (${healthy?.note ?? 'healthy'}); ${peers?.note ?? ''}`,
      data: { broughtBack: { was: state, healthy: healthy?.data }, ...((peers?.data as object) ?? {}) },
    };
  },
};

export const checkIdleStep: Step = {
  name: 'check replica is idle',
  gate: true,
  description: 'empty queue, no mutations, no pending sends, no queries',
  run: async (ctx) => {
    const idle = await checkSelfBeforeStop(gateCtx(ctx));
    // An embedded Keeper member also waits for the run's Keeper slot and a healthy ensemble.
    return withKeeper(idle, await checkKeeperBeforeStop(gateCtx(ctx)));
  },
};

/** A gate's result with the Keeper gate's appended, when the host carries Keeper. */
function withKeeper(main: StepResult, keeper: StepResult): StepResult {
  if (!keeper || !(keeper.data as { keeper?: boolean } | undefined)?.keeper) return main;
  const m = main ?? {};
  return { ...m, note: `${m.note ?? ''}; ${keeper.note}`, data: { ...((m.data as object) ?? {}), keeper: keeper.data } };
}

export const stopClickHouseStep: Step = {
  name: 'stop clickhouse-server',
  description: 'the replica goes down; its peers serve the shard',
  skipIf: 'already stopped',
  downtime: 'starts',
  run: async (ctx) => {
    const { host } = ctx;
    // The peers step of this process saw the server active a moment ago (only the idle gate ran
    // since): systemd is not asked again on the replica's path. Had the server died meanwhile,
    // stopping it changes nothing and the start and health gates that follow deal with it. A
    // resumed run asks.
    const state = ctx.run.shared.delete(servingKey(host)) ? 'active' : await serviceState(host);
    if (state === 'inactive' || state === 'failed') return { changed: false, skipped: `already stopped (${state})` };
    // The node lock shared with the backup agent: never stop the server under a running backup.
    await takeNodeLock(ctx, 'stop clickhouse-server');
    // Our own kept-alive HTTP connections would hold the server's shutdown for seconds
    // (it waits for open connections): close this host's client first.
    await closeClient(ctx);
    const t0 = performance.now();
    await stopService(host);
    const ms = performance.now() - t0;
    ctx.run.shared.set(stoppedKey(host), true);
    return { note: `stopped in ${formatDuration(ms)}`, data: { stopMs: Math.round(ms) } };
  },
  // A replica whose later step failed is not left down.
  rollback: async (ctx) => {
    await startService(ctx.host);
    await releaseNodeLock(ctx);
  },
};

export const startClickHouseStep: Step = {
  name: 'start clickhouse-server',
  description: 'remembers when, for "no new errors since"',
  skipIf: 'already running',
  run: async (ctx) => {
    const { host } = ctx;
    // After the stop step the server is down; a plan only recorded that stop, so the state
    // cannot be read from the host and is what the stop would have left. When this process's
    // stop step stopped it an instant ago, systemd is not asked again: on a loaded replica that
    // costs 50–170 ms of its downtime. A resumed run (stopped before the crash) asks.
    const justStopped = ctx.run.shared.delete(stoppedKey(host));
    const state = justStopped ? 'inactive' : await host.whenApplied<ServiceState>('inactive', () => serviceState(host));
    if (state === 'active') {
      rememberRestart(ctx, await serviceStartedAt(host));
      return { changed: false, skipped: 'already running' };
    }
    const at = new Date();
    rememberRestart(ctx, at);
    const t0 = performance.now();
    await startService(host);
    const ms = performance.now() - t0;
    return { note: `started in ${formatDuration(ms)}`, data: { startMs: Math.round(ms) } };
  },
};

export const waitHealthyStep: Step = {
  name: 'wait until healthy',
  waitsFor: 'answers, writable, caught up, sees its shard',
  downtime: 'ends',
  run: async (ctx) => {
    ctx.run.shared.delete(servingKey(ctx.host)); // a sequence without the stop step leaves none behind
    const since = await restartedAt(ctx);
    const res: StepResult = await waitReplicaHealthy(gateCtx(ctx), { since });
    const keeper = withKeeper(res, await waitKeeperBack(gateCtx(ctx)));
    await releaseNodeLock(ctx); // taken before the stop; backups may run again
    return { changed: false, ...(keeper ?? {}) };
  },
};

/**
 * WORK (commands that may restart or reboot the replica) between the before-stop gates and the
 * wait-until-healthy gate. The time the work starts is what "new errors since" is measured from.
 */
export function withReplicaGates(work: Step[]): Step[] {
  const [first, ...rest] = work;
  if (!first) return [checkPeersStep, checkIdleStep, waitHealthyStep];
  const timedFirst: Step = {
    ...first,
    run: async (ctx) => {
      ctx.run.shared.delete(servingKey(ctx.host)); // the work, not a stop step, follows the gates
      await closeClient(ctx); // the work may stop the server: do not hold its shutdown
      await takeNodeLock(ctx, first.name); // ... nor run under a backup
      rememberRestart(ctx, new Date());
      return first.run(ctx);
    },
  };
  return [checkPeersStep, checkIdleStep, timedFirst, ...rest, waitHealthyStep];
}

/** Close and forget the run's ClickHouse client of this host (src/clickhouse/client.ts caches it as `ch:<host>`). */
async function closeClient(ctx: StepContext<any>): Promise<void> {
  const k = `ch:${ctx.host.name}`;
  const cached = ctx.run.shared.get(k) as Promise<ChClient> | undefined;
  if (!cached) return;
  ctx.run.shared.delete(k);
  await cached.then((c) => c.close()).catch(() => {});
}

const key = (host: HostHandle) => `replica-restarted-at:${host.name}`;
/** Set by the peers step of this process when the server was active, taken by the stop step. */
const servingKey = (host: HostHandle) => `replica-serving-per-this-process:${host.name}`;
/** Set by the stop step of this process, taken by the start step right after it. */
const stoppedKey = (host: HostHandle) => `replica-stopped-by-this-process:${host.name}`;

function rememberRestart(ctx: StepContext<any>, at: Date): void {
  ctx.run.shared.set(key(ctx.host), at);
}

/**
 * When the replica's server (re)started. Recorded by the start step; after `chops resume` in the
 * middle of a replica it is not in memory any more, so ask systemd when the unit became active.
 */
async function restartedAt(ctx: StepContext<any>): Promise<Date> {
  const known = ctx.run.shared.get(key(ctx.host));
  if (known instanceof Date) return known;
  const at = await serviceStartedAt(ctx.host);
  rememberRestart(ctx, at);
  return at;
}

/**
 * When systemd started the unit's main process (ExecMainStartTimestamp: under Type=notify, as on
 * 22.12+, ActiveEnterTimestamp is when the server said it was ready, after the early start-up
 * errors); now when unknown (custom start commands).
 */
async function serviceStartedAt(host: HostHandle): Promise<Date> {
  const c = host.def.clickhouse;
  if (c.startCommand) return new Date();
  const r = await host.probe({ nothrow: true, timeoutMs: 15_000 })`date -d "$(systemctl show -p ExecMainStartTimestamp --value ${c.service})" +%s%3N`;
  const ms = Number(r.stdout.trim());
  return r.code === 0 && Number.isFinite(ms) && ms > 0 ? new Date(ms) : new Date();
}
