// The steps of move-data (playbooks/move-data.ts puts them in the runbook's order). Every step
// reads the host's real state first (situation.ts) and does only what is missing: a rerun reports
// "unchanged", and a resumed run after a crash continues from the host's truth.
// Over 300 lines on purpose: the move's steps in the runbook's order, each short and next to the
// one it depends on (the swap and its rollback read best side by side).
import type { Step, StepContext } from '../../src/engine/playbook.js';
import { ChopsError } from '../../src/errors.js';
import { configPaths } from '../../facts/datadir/config-paths.js';
import { mounts, space } from '../../facts/datadir/mounts.js';
import { compareTrees, treeStats } from '../../facts/datadir/tree.js';
import { checkPeersBeforeStop, checkSelfBeforeStop, waitReplicaHealthy } from '../clickhouse/gates.js';
import { type ServiceState, serviceState, startService, stopService } from '../clickhouse/service.js';
import { checkIdleStep, checkPeersStep, startClickHouseStep, waitHealthyStep } from '../clickhouse/replica-steps.js';
import { judgeShardBackups, pauseBackupAgent, readNewestBackup, resumeBackupAgent } from './backup-guard.js';
import type { NewestBackup } from '../../facts/backup/status.js';
import { copyInPlace, dryRunDifferences, endLeftoverCopy, type PassResult, runPass, smallFileDifferences } from './copy.js';
import { formatBytes, formatDuration } from '../../src/format.js';
import { MEM, memoryOf } from './memory.js';
import { type MoveParams, layoutOf, verifiedMarker } from './params.js';
import { judgePreflight, judgeSpace } from './preflight.js';
import { converged } from './rsync-cmd.js';
import { phaseOf, readSituation } from './situation.js';
import { armFstab, ensureStaging, fixOwnership, mountAtDataDir, restoreOriginal, setOldAside, unmountStaging, volumeEntry, type Volume } from './swap.js';
import { compareWithBefore, compareWithPeers, tableCounts, type TableCount } from './verify.js';

type Ctx = StepContext<MoveParams>;
const L = (ctx: Ctx) => layoutOf(ctx.host.def, ctx.params);

/** Gates passed in THIS process, per host: a resumed run never stops a server on gates of a crashed one. */
const gatesKey = (ctx: Ctx) => `move-data.gates-passed:${ctx.host.name}`;

// ------------------------------------------------------------------ preflight (once)

export const backupPreconditionStep: Step<MoveParams> = {
  name: 'check every shard has a recent good backup',
  run: async (ctx) => {
    const p = ctx.params;
    if (!p['backup-check']) {
      const text = 'backup precondition NOT checked (--no-backup-check): moving without a verified recent backup of every shard';
      ctx.run.emit({ type: 'warning', host: ctx.host.name, gate: 'backup precondition', text });
      return { changed: false, skipped: text };
    }
    const shards = new Map<string, typeof ctx.run.selected>();
    for (const h of ctx.run.selected) {
      const k = `${h.cluster}/${h.shardName}`;
      if (!shards.has(k))
        shards.set(
          k,
          ctx.run.inventory.hosts.filter((x) => x.cluster === h.cluster && x.shard === h.shard),
        );
    }
    const bad: string[] = [];
    const good: string[] = [];
    for (const [shard, replicas] of shards) {
      const statuses: Array<{ host: string; newest?: NewestBackup; error?: string }> = await Promise.all(
        replicas.map(async (r) => ({ host: r.name, ...(await readNewestBackup(ctx.run.handle(r))) })),
      );
      const v = judgeShardBackups(statuses, p['backup-max-age']);
      (v.ok ? good : bad).push(`shard ${shard}: ${v.detail}`);
    }
    if (bad.length) {
      throw new ChopsError(`no good backup newer than ${formatDuration(p['backup-max-age'])} for:\n  - ${bad.join('\n  - ')}`, {
        hint: 'run a backup first (chops backup run), or pass --no-backup-check to move without one (it is written in the run log)',
      });
    }
    return { changed: false, note: good.join('; '), data: { backups: good } };
  },
};

// ------------------------------------------------------------------ volume and preflight (each host)

export const useExistingVolumeStep: Step<MoveParams> = {
  name: 'find the new volume in /etc/fstab',
  run: async (ctx) => {
    const l = L(ctx);
    const e = await volumeEntry(ctx.host, l.dataDir);
    if (!e)
      throw new ChopsError(`${ctx.host.name}: /etc/fstab has no line for ${l.dataDir}`, {
        hint: '--volume existing needs the new volume in /etc/fstab for the data directory (by UUID, defaults,noatime); or use --volume prepare',
      });
    const vol: Volume = { source: e.source, fstype: e.fstype, options: e.options };
    memoryOf(ctx).set(MEM.volume, vol);
    const s = await readSituation(ctx.host, l);
    // Until the swap the volume holds a partial copy: a reboot must not mount it over live data.
    // A line from disk preparation is staged `noauto` for that (tasks/disk, docs/disk-preparation-api.md); a line
    // that was already there (--volume existing) is commented out until the swap.
    const disarmed = phaseOf(s).phase === 'before' && ctx.params.volume === 'existing' ? await armFstab(ctx.host, l.dataDir, false) : false;
    return {
      changed: disarmed,
      note: `${e.source} (${e.fstype}, ${e.options})${disarmed ? '; its fstab line is commented out until the swap' : e.disarmed ? '; fstab line inactive until the swap' : ''}`,
      data: { volume: vol },
    };
  },
};

export const preflightStep: Step<MoveParams> = {
  name: 'check the data directory, its config paths and the volume',
  run: async (ctx) => {
    const { host } = ctx;
    const l = L(ctx);
    const s = await readSituation(host, l);
    const ph = phaseOf(s);
    if (ph.phase === 'swapped') return { changed: false, skipped: `already moved: ${ph.why}` };
    if (ph.phase === 'inconsistent')
      throw new ChopsError(`${host.name}: the data directory is in no state a move leaves it in: ${ph.why}`, {
        hint: 'inspect the host by hand before moving',
      });
    const src = ph.phase === 'set-aside' ? l.oldDir : l.dataDir;
    const [config, ms, tree] = await Promise.all([host.fact(configPaths, { dataDir: l.dataDir }), host.fact(mounts), host.fact(treeStats, src)]);
    const v = judgePreflight({ layout: l, config, mounts: ms, tree });
    if (s.data.mountpoint && !s.data.volume) v.refusals.push(`${l.dataDir} is itself a mount point (another volume): it cannot be set aside by a rename`);
    if (v.refusals.length)
      throw new ChopsError(`${host.name}: refusing to move ${l.dataDir}:\n  - ${v.refusals.join('\n  - ')}`, {
        hint: 'fix the configuration or the mounts, then run again',
      });
    const vol = await knownVolume(ctx);
    await ensureStaging(host, l, vol);
    // In a plan the volume was not really mounted: its free space is known only when applied.
    const free = await host.whenApplied(undefined, () => host.fact(space, l.staging));
    const lack = free ? judgeSpace(tree.usedBytes, free) : undefined;
    if (lack) throw new ChopsError(`${host.name}: ${lack}`, { hint: 'use a bigger volume' });
    return {
      changed: false,
      note: `${formatBytes(tree.usedBytes)} in ${tree.files} files (${tree.extraLinks} hard links, ${tree.symlinks} symlinks); volume: ${free ? `${formatBytes(free.avail)} free` : 'free space known once mounted'}`,
      data: { tree, notes: v.notes, free },
    };
  },
  rollback: async (ctx) => {
    await unmountStaging(ctx.host, L(ctx));
  },
};

async function knownVolume(ctx: Ctx): Promise<Volume> {
  const m = memoryOf(ctx).get<Volume>(MEM.volume);
  if (m) return m;
  const e = await volumeEntry(ctx.host, L(ctx).dataDir);
  if (!e) throw new ChopsError(`${ctx.host.name}: /etc/fstab has no line for ${L(ctx).dataDir}`, { hint: 'the volume step must run first' });
  const vol = { source: e.source, fstype: e.fstype, options: e.options };
  memoryOf(ctx).set(MEM.volume, vol);
  return vol;
}

// ------------------------------------------------------------------ per replica, server running

export const liveCopyStep: Step<MoveParams> = {
  name: 'copy while the server runs (rsync passes until the delta converges)',
  run: async (ctx) => {
    const { host } = ctx;
    const l = L(ctx);
    if (ctx.params.copy === 'offline') return { changed: false, skipped: '--copy=offline: everything is copied with the server stopped' };
    const s = await readSituation(host, l);
    if (phaseOf(s).phase !== 'before') return { changed: false, skipped: `nothing to copy live: ${phaseOf(s).why}` };
    const left = await endLeftoverCopy(host);
    if (left) host.note(left);
    await ensureStaging(host, l, await knownVolume(ctx));
    const passes: PassResult[] = [];
    for (;;) {
      const n = passes.length + 1;
      const r = await runPass(ctx, 'live', { src: l.dataDir, dst: l.staging, bwlimit: ctx.params.bwlimit }, `live pass ${n}`);
      passes.push(r);
      host.note(
        `live pass ${n}: ${formatBytes(r.delta)} in ${formatDuration(r.ms)}${r.code === 24 ? ' (some files vanished: normal while the server runs)' : ''}`,
      );
      const c = converged(
        passes.map((x) => x.delta),
        { convergedBytes: ctx.params['converged-mb'] * 1024 * 1024, maxPasses: ctx.params['max-passes'] },
      );
      if (c.done) {
        const bytes = passes.reduce((a, x) => a + x.delta, 0);
        const mem = memoryOf(ctx);
        mem.set(MEM.bytesOnline, (mem.get<number>(MEM.bytesOnline) ?? 0) + bytes);
        return {
          note: `${passes.length} pass(es), ${formatBytes(bytes)} copied online; ${c.why}`,
          data: { passes: passes.map((x) => ({ delta: x.delta, ms: Math.round(x.ms), code: x.code })), bytesOnline: bytes },
        };
      }
    }
  },
};

/** Gates that remember they passed in this process (see the stop step). */
function remembered(step: Step): Step<MoveParams> {
  return {
    ...step,
    run: async (ctx) => {
      const r = await step.run(ctx);
      ctx.run.shared.set(gatesKey(ctx), true);
      return r;
    },
  };
}
export const movePeersStep = remembered(checkPeersStep);
export const moveIdleStep = remembered(checkIdleStep);

export const recordCountsStep: Step<MoveParams> = {
  name: 'record tables and row counts',
  run: async (ctx) => {
    const s = await readSituation(ctx.host, L(ctx));
    if (phaseOf(s).phase !== 'before' || (await serviceState(ctx.host)) !== 'active') {
      const had = memoryOf(ctx).get<TableCount[]>(MEM.countsBefore);
      return { changed: false, skipped: had ? 'recorded before' : 'the server is not running on the original data: counts cannot be read now' };
    }
    const counts = await tableCounts(ctx, ctx.host.def);
    memoryOf(ctx).set(MEM.countsBefore, counts);
    const rows = counts.filter((c) => c.rows >= 0).reduce((a, c) => a + c.rows, 0);
    return { changed: false, note: `${counts.length} table(s), ${rows} rows`, data: { counts } };
  },
};

export const pauseBackupStep: Step<MoveParams> = {
  name: 'pause the backup agent (node lock)',
  run: (ctx) => pauseBackupAgent(ctx),
  rollback: async (ctx) => {
    await resumeBackupAgent(ctx);
  },
};

// ------------------------------------------------------------------ the stop … start window

/**
 * A step of the stop window holds the node lock: after `chops resume` (a new process, whose
 * lock went with the old run's SSH session) the first of them takes it again, so the agent never
 * writes shadow/ or backup/ while the server is stopped or the data directory is being swapped.
 */
function underNodeLock(step: Step<MoveParams>): Step<MoveParams> {
  return {
    ...step,
    run: async (ctx) => {
      await pauseBackupAgent(ctx);
      return step.run(ctx);
    },
  };
}

export const stopStep: Step<MoveParams> = underNodeLock({
  name: 'stop clickhouse-server and wait for it to exit',
  run: async (ctx) => {
    const { host } = ctx;
    const st = await serviceState(host);
    if (st === 'inactive' || st === 'failed') return { changed: false, skipped: `already stopped (${st})` };
    const where = phaseOf(await readSituation(host, L(ctx)));
    if (where.phase === 'swapped') return { changed: false, skipped: `not stopping: the replica already runs on the new volume (${where.why})` };
    // A resumed run (or a crash between the gates and this step) has no fresh verdict: check again.
    if (!ctx.run.shared.get(gatesKey(ctx))) {
      host.note('checking the gates again before the stop (their last verdict is from before an interruption)');
      await checkPeersBeforeStop(ctx as StepContext);
      await checkSelfBeforeStop(ctx as StepContext);
    }
    await closeClient(ctx);
    const t0 = Date.now();
    memoryOf(ctx).set(MEM.stoppedAt, t0);
    await stopService(host);
    await host.whenApplied(undefined, () => waitProcessGone(ctx)); // a plan stops nothing: no process to wait for
    return { note: `stopped in ${formatDuration(Date.now() - t0)}`, data: { stoppedAt: t0 } };
  },
  rollback: async (ctx) => {
    const { host } = ctx;
    const l = L(ctx);
    if ((await serviceState(host)) === 'active') {
      await closeClient(ctx);
      await stopService(host);
    }
    const did = await restoreOriginal(host, l);
    await startService(host);
    host.note(`rolled back: ${did.join('; ') || 'nothing was moved'}; server started on ${l.dataDir}`);
    await waitReplicaHealthy(ctx as StepContext, { since: new Date() });
  },
});

/** systemd says inactive once the main process exited; make sure no server process is left. */
async function waitProcessGone(ctx: Ctx): Promise<void> {
  const { host } = ctx;
  const c = host.def.clickhouse;
  if (c.stopCommand) return;
  for (let i = 0; i < 300; i++) {
    const r = await host.probe({ nothrow: true })`systemctl show -p MainPID --value ${c.service}`;
    if (r.stdout.trim() === '0') return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new ChopsError(`${host.name}: ${c.service} is stopped but its process has not exited after 30 s`);
}

export const finalPassStep: Step<MoveParams> = underNodeLock({
  name: 'final pass with the server stopped (--delete, small files by checksum)',
  run: async (ctx) => {
    const { host } = ctx;
    const l = L(ctx);
    const s = await readSituation(host, l);
    if (phaseOf(s).phase !== 'before') return { changed: false, skipped: `already past the copy: ${phaseOf(s).why}` };
    // After the stop step, which a plan only records: the server is stopped once applied.
    if ((await host.whenApplied<ServiceState>('inactive', () => serviceState(host))) === 'active')
      throw new ChopsError(`${host.name}: clickhouse-server is running: the final pass needs it stopped`, {
        hint: 'something started it; `chops resume` stops it again after the gates',
      });
    const left = await endLeftoverCopy(host);
    if (left) host.note(left);
    await ensureStaging(host, l, await knownVolume(ctx));
    const r = await runPass(ctx, 'final', { src: l.dataDir, dst: l.staging }, 'final pass');
    const diff = await host.whenApplied([], () => smallFileDifferences(host, l.dataDir, l.staging, ctx.params['checksum-kb']));
    if (diff.length) {
      host.note(`${diff.length} small file(s) changed with the same size and time: copying them by content`);
      await copyInPlace(host, l.dataDir, l.staging, diff);
    }
    const mem = memoryOf(ctx);
    mem.set(MEM.bytesOffline, (mem.get<number>(MEM.bytesOffline) ?? 0) + r.delta);
    if (ctx.params['inject-failure'] === 'final-pass')
      throw new ChopsError(`${host.name}: injected failure after the final pass (--inject-failure final-pass)`);
    return {
      note: `${formatBytes(r.delta)} copied with the server stopped in ${formatDuration(r.ms)}${diff.length ? `, ${diff.length} small file(s) by checksum` : ''}`,
      data: { bytesOffline: r.delta, ms: Math.round(r.ms), checksumFixed: diff.length },
    };
  },
});

export const proveIdentityStep: Step<MoveParams> = {
  name: 'prove the copy is identical',
  run: async (ctx) => {
    const { host } = ctx;
    const l = L(ctx);
    const s = await readSituation(host, l);
    if (phaseOf(s).phase !== 'before') return { changed: false, skipped: `proven before: ${phaseOf(s).why}` };
    // The copy exists only once the passes ran: a plan names the proof it would make.
    const proof = await host.whenApplied(undefined, () =>
      Promise.all([
        dryRunDifferences(host, l.dataDir, l.staging),
        host.fact(treeStats, l.dataDir),
        host.fact(treeStats, l.staging),
        smallFileDifferences(host, l.dataDir, l.staging, ctx.params['checksum-kb']),
      ]),
    );
    if (!proof) return { changed: false, note: 'would compare: rsync dry run, counts, sizes, links, small-file checksums' };
    const [diffs, a, b, small] = proof;
    const problems = [...diffs.slice(0, 10).map((d) => `dry run: ${d}`), ...compareTrees(a, b), ...small.slice(0, 10).map((p) => `checksum differs: ${p}`)];
    if (problems.length)
      throw new ChopsError(`${host.name}: the copy on the new volume is not identical to ${l.dataDir}:\n  - ${problems.join('\n  - ')}`, {
        hint: 'the replica is put back on its original directory; `chops resume` copies again',
      });
    memoryOf(ctx).set(MEM.identical, true);
    return {
      changed: false,
      note: `identical: ${a.files} files (${a.inodes} distinct, ${a.extraLinks} hard links), ${a.symlinks} symlinks, ${formatBytes(a.bytes)}; dry run lists nothing`,
      data: { source: a, copy: b },
    };
  },
};

export const unmountStagingStep: Step<MoveParams> = {
  name: 'unmount the staging point',
  run: async (ctx) => ((await unmountStaging(ctx.host, L(ctx))) ? { note: `unmounted ${L(ctx).staging}` } : { changed: false, skipped: 'not mounted' }),
};

export const setAsideStep: Step<MoveParams> = underNodeLock({
  name: 'move the old data directory aside',
  run: async (ctx) => {
    const r = await setOldAside(ctx.host, L(ctx));
    return r.changed ? { note: r.note } : { changed: false, skipped: r.note };
  },
});

export const mountDataDirStep: Step<MoveParams> = underNodeLock({
  name: 'mount the new volume at the data directory (fstab)',
  run: async (ctx) => {
    const r = await mountAtDataDir(ctx.host, L(ctx));
    memoryOf(ctx).set(MEM.swapped, true);
    return r.changed ? { note: r.note } : { changed: false, skipped: r.note };
  },
});

export const fixOwnershipStep: Step<MoveParams> = underNodeLock({
  name: 'fix ownership (and lost+found)',
  run: async (ctx) => {
    // After a power loss between the mount and here the volume is not mounted (its fstab line
    // may still be `noauto`): mount it again first, or chown would hit the empty mount point.
    const m = await mountAtDataDir(ctx.host, L(ctx));
    if (m.changed) ctx.host.note(`the volume was not mounted any more (a reboot?): ${m.note}`);
    const r = await fixOwnership(ctx.host, L(ctx));
    return r.changed ? { note: r.note } : { changed: false, note: r.note };
  },
});

export const moveStartStep: Step<MoveParams> = underNodeLock(startClickHouseStep as Step<MoveParams>);

export const moveHealthyStep: Step<MoveParams> = {
  name: waitHealthyStep.name,
  run: async (ctx) => {
    const r = (await waitHealthyStep.run(ctx)) ?? {};
    const mem = memoryOf(ctx);
    const stoppedAt = mem.get<number>(MEM.stoppedAt);
    const healthyAt = Date.now();
    mem.set(MEM.healthyAt, healthyAt);
    const downtimeMs = stoppedAt ? healthyAt - stoppedAt : undefined;
    return {
      ...r,
      note: `${r.note ?? 'healthy'}${downtimeMs !== undefined ? `; downtime ${formatDuration(downtimeMs)}` : ''}`,
      data: {
        ...(r.data as object),
        downtimeMs,
        bytesOnline: mem.get(MEM.bytesOnline) ?? 0,
        bytesOffline: mem.get(MEM.bytesOffline) ?? 0,
        copy: ctx.params.copy,
      },
    };
  },
};

export const verifyStep: Step<MoveParams> = {
  name: 'verify tables and row counts',
  run: async (ctx) => {
    const { host } = ctx;
    const l = L(ctx);
    // The counts of the moved data exist only once the replica runs on it: a plan names the comparison.
    const now = await host.whenApplied(undefined, () => tableCounts(ctx, host.def));
    if (!now) return { changed: false, note: 'would compare tables and counts with the ones before the stop and with the peers' };
    const before = memoryOf(ctx).get<TableCount[]>(MEM.countsBefore);
    const problems: string[] = [];
    if (!before) {
      // Missing information never passes: without the counts from before the stop, only the
      // replicated tables can be checked (against the peers); any other table fails.
      for (const t of now) if (t.rows >= 0 && !t.replicated) problems.push(`${t.table}: no count from before the stop (interrupted run) to compare with`);
    } else problems.push(...compareWithBefore(before, now));
    problems.push(...(await compareWithPeers(ctx, now)));
    if (problems.length)
      throw new ChopsError(`${host.name}: the data on the new volume does not match:\n  - ${problems.join('\n  - ')}`, {
        hint: 'the replica is put back on its original directory',
      });
    const marker = JSON.stringify({ run: ctx.run.runId, at: new Date().toISOString(), dataDir: l.dataDir, oldDir: l.oldDir, tables: now.length });
    await host.putFile(verifiedMarker(l), `${marker}\n`, { mode: '0644' });
    return {
      changed: false,
      note: `${now.length} table(s) match (${now.filter((t) => t.replicated).length} replicated checked against the peers)`,
      data: { counts: now },
    };
  },
};

export const resumeBackupStep: Step<MoveParams> = {
  name: 'let the backup agent run again',
  // the wait-until-healthy gate released the node lock already (tasks/clickhouse/replica-steps.ts)
  run: (ctx) => resumeBackupAgent(ctx),
};

async function closeClient(ctx: Ctx): Promise<void> {
  const k = `ch:${ctx.host.name}`;
  const cached = ctx.run.shared.get(k) as Promise<{ close(): Promise<void> }> | undefined;
  if (!cached) return;
  ctx.run.shared.delete(k);
  await cached.then((c) => c.close()).catch(() => {});
}

export { startService };
