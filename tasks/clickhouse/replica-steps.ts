// The steps every piece of rolling work on a replica is wrapped in: check the topology once,
// check the peers and the replica itself before taking it down, stop/start the server, and wait
// until it is a healthy, caught-up replica again before the next replica of its shard goes.
// Shared by `rolling-restart` and `exec --rolling`.
import type { Step, StepContext, StepResult } from '../../src/engine/playbook.js';
import type { HostHandle } from '../../src/host.js';
import { checkPeersBeforeStop, checkSelfBeforeStop, checkTopology, waitReplicaHealthy } from './gates.js';
import { serviceState, startService, stopService, type ServiceState } from './service.js';
import type { ChClient } from '../../src/clickhouse/client.js';

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
  run: (ctx) => checkTopology(gateCtx(ctx)),
};

export const checkPeersStep: Step = {
  name: 'check peers',
  gate: true,
  run: (ctx) => checkPeersBeforeStop(gateCtx(ctx)),
};

export const checkIdleStep: Step = {
  name: 'check replica is idle',
  gate: true,
  run: (ctx) => checkSelfBeforeStop(gateCtx(ctx)),
};

export const stopClickHouseStep: Step = {
  name: 'stop clickhouse-server',
  run: async (ctx) => {
    const { host } = ctx;
    const state = await serviceState(host);
    if (state === 'inactive' || state === 'failed') return { changed: false, skipped: `already stopped (${state})` };
    // Our own kept-alive HTTP connections would hold the server's shutdown for seconds
    // (it waits for open connections): close this host's client first.
    await closeClient(ctx);
    const t0 = performance.now();
    await stopService(host);
    const ms = performance.now() - t0;
    return { note: `stopped in ${seconds(ms)}`, data: { stopMs: Math.round(ms) } };
  },
  // A replica whose later step failed is not left down.
  rollback: async ({ host }) => {
    await startService(host);
  },
};

export const startClickHouseStep: Step = {
  name: 'start clickhouse-server',
  run: async (ctx) => {
    const { host } = ctx;
    // After the stop step the server is down; a plan only recorded that stop, so the state
    // cannot be read from the host and is what the stop would have left.
    if ((await host.whenApplied<ServiceState>('inactive', () => serviceState(host))) === 'active') {
      rememberRestart(ctx, await serviceStartedAt(host));
      return { changed: false, skipped: 'already running' };
    }
    const at = new Date();
    rememberRestart(ctx, at);
    const t0 = performance.now();
    await startService(host);
    const ms = performance.now() - t0;
    return { note: `started in ${seconds(ms)}`, data: { startMs: Math.round(ms) } };
  },
};

export const waitHealthyStep: Step = {
  name: 'wait until healthy',
  run: async (ctx) => {
    const since = await restartedAt(ctx);
    const res: StepResult = await waitReplicaHealthy(gateCtx(ctx), { since });
    return { changed: false, ...(res ?? {}) };
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
      await closeClient(ctx); // the work may stop the server: do not hold its shutdown
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

/** systemd's ActiveEnterTimestamp of the unit; now when unknown (custom start commands). */
async function serviceStartedAt(host: HostHandle): Promise<Date> {
  const c = host.def.clickhouse;
  if (c.startCommand) return new Date();
  const r = await host.probe({ nothrow: true, timeoutMs: 15_000 })`date -d "$(systemctl show -p ActiveEnterTimestamp --value ${c.service})" +%s%3N`;
  const ms = Number(r.stdout.trim());
  return r.code === 0 && Number.isFinite(ms) && ms > 0 ? new Date(ms) : new Date();
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}
