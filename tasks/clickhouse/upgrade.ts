// The steps of a package upgrade of one replica (playbooks/rolling-upgrade.ts): the version must
// be offered on every host before anything changes; on a replica the packages are installed at
// that version and held WITHOUT restarting the server (the packages' maintainer scripts are
// denied the restart by a policy-rc.d for the length of chops' own apt run), then the gated
// stop/start restarts it, and the running server is verified: version() is the package's
// release and the process maps no replaced (deleted) file — it runs what is installed now.
// A replica whose new version does not come back healthy (or fails the verification) is rolled
// back: the previous versions, remembered before the install, are installed again and started.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Step, StepContext, StepResult } from '../../src/engine/playbook.js';
import type { HostHandle } from '../../src/host.js';
import { ChopsError } from '../../src/errors.js';
import { chClient } from '../../src/clickhouse/client.js';
import { readQueryFact } from '../../src/fact.js';
import { formatDuration } from '../../src/format.js';
import { shq } from '../../src/quote.js';
import { serverInfo } from '../../facts/clickhouse/server.js';
import {
  clickhousePackages,
  compareDebianVersions,
  installedClickhousePackages,
  isConfigured,
  releaseOf,
  resolveVersion,
  type PackageFacts,
} from '../../facts/system/packages.js';
import { serverProcess, type ServerProcess } from '../../facts/system/server-process.js';
import { serviceState, startService } from './service.js';
import { waitReplicaHealthy } from './gates.js';
import { releaseNodeLock } from '../backup/node-lock.js';

export interface UpgradeParams {
  version: string;
  'allow-downgrade'?: boolean;
  'apt-update'?: boolean;
  config?: string[];
}

/** What an upgrade remembers per host (ctx.memory, on disk before the step counts as done). */
const TARGET = 'upgrade.target';
const PREVIOUS = 'upgrade.previous';
const PID_BEFORE = 'upgrade.pidBeforeStop';
const CONFIG = 'upgrade.config';

/** Where --config files go: the server reads every file of config.d at its start. */
export const CONFIG_DIR = '/etc/clickhouse-server/config.d';

const versions = (f: PackageFacts) => Object.fromEntries(f.installed.map((p) => [p.name, p.version]));
const listVersions = (v: Record<string, string>) => {
  const distinct = [...new Set(Object.values(v))];
  return distinct.length === 1
    ? `${Object.keys(v).join(', ')} ${distinct[0]}`
    : Object.entries(v)
        .map(([n, x]) => `${n} ${x}`)
        .join(', ');
};

/**
 * What the packages of this host say about --version: the exact repository version every
 * installed ClickHouse package goes to, or why not. Pure, for the preflight and its tests.
 */
export function upgradeDecision(
  facts: PackageFacts,
  wanted: string,
  opts: { allowDowngrade?: boolean } = {},
): { target: string; from: Record<string, string>; upToDate: boolean } | { error: string; hint: string } {
  if (!facts.installed.length)
    return {
      error: 'no ClickHouse package is installed (dpkg knows none of clickhouse-server, -common, -common-static, -client)',
      hint: 'rolling-upgrade upgrades Debian/Ubuntu package installations',
    };
  const half = facts.installed.filter((p) => !isConfigured(p.state));
  if (half.length)
    return {
      error: `dpkg left ${half.map((p) => `${p.name} in state "${p.state}"`).join(', ')} (an interrupted install)`,
      hint: 'finish it on the host (dpkg --configure -a, or apt-get -f install), then run chops again',
    };
  const targets = new Set<string>();
  for (const p of facts.installed) {
    const r = resolveVersion(wanted, facts.available[p.name] ?? []);
    if ('error' in r)
      return {
        error: `${p.name} ${wanted}: ${r.error}`,
        hint: "check the host's apt sources (apt-cache madison clickhouse-server), or give a version they offer",
      };
    targets.add(r.version);
  }
  if (targets.size > 1)
    return { error: `${wanted} means different versions for the installed packages (${[...targets].join(', ')})`, hint: 'give the exact package version' };
  const target = [...targets][0];
  const from = versions(facts);
  const older = facts.installed.filter((p) => compareDebianVersions(target, p.version) < 0);
  if (older.length && !opts.allowDowngrade)
    return { error: `${target} is older than the installed ${listVersions(from)}`, hint: 'pass --allow-downgrade to go back to an older version on purpose' };
  return { target, from, upToDate: facts.installed.every((p) => p.version === target) };
}

/** Preflight, every host in parallel: refresh the package lists, refuse when the version is not offered. */
export const checkVersionOfferedStep: Step<UpgradeParams> = {
  name: 'check the version is offered',
  description: 'apt-get update; every installed ClickHouse package is offered at --version',
  run: async (ctx) => {
    const { host, params } = ctx;
    if (params['apt-update'] !== false) await host.$({ timeoutMs: 600_000 })`apt-get -o DPkg::Lock::Timeout=300 -q update`;
    const facts = await host.fact(clickhousePackages);
    const d = upgradeDecision(facts, params.version, { allowDowngrade: params['allow-downgrade'] });
    if ('error' in d) throw new ChopsError(`${host.name}: cannot upgrade to ${params.version}: ${d.error}`, { hint: d.hint });
    ctx.memory.set(TARGET, d.target);
    const held = facts.held.length ? `; held: ${facts.held.join(', ')}` : '';
    return {
      changed: false,
      note: d.upToDate ? `already ${listVersions(d.from)}${held}` : `${listVersions(d.from)} → ${d.target} (offered)${held}`,
      data: { from: d.from, to: d.target, held: facts.held },
    };
  },
};

function targetOf(ctx: StepContext<UpgradeParams>): string {
  const t = ctx.memory.get<string>(TARGET);
  if (!t) throw new ChopsError(`${ctx.host.name}: the preflight did not record the target version`, { hint: 'run the playbook from its start' });
  return t;
}

/**
 * The remote script that installs VERSIONS (package → version) and holds them, run detached
 * from the SSH session (setsid, output to a log): a control machine that dies mid-install must
 * not kill dpkg half way. A resumed run waits for dpkg's lock and finds the work done.
 */
export function installScript(versionsToInstall: Record<string, string>, runId = 'plan'): string {
  const specs = Object.entries(versionsToInstall)
    .map(([n, v]) => shq(`${n}=${v}`))
    .join(' ');
  const names = Object.keys(versionsToInstall).map(shq).join(' ');
  const log = '/var/log/chops-rolling-upgrade.log';
  const inner = `set -e
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
if [ -e "$policy" ] && ! grep -q chops-rolling-upgrade "$policy"; then
  # somebody else's policy: fine only when it denies clickhouse-server's restart too
  rc=0; "$policy" clickhouse-server restart >/dev/null 2>&1 || rc=$?
  [ "$rc" = 101 ] || { echo "$policy exists (not chops') and allows restarting clickhouse-server: the package would restart the server outside the health gates" >&2; exit 3; }
else
  printf '%s\\n' '#!/bin/sh' '# chops-rolling-upgrade: clickhouse-server is restarted by chops, behind its health gates' 'case "$1" in clickhouse-server) exit 101 ;; esac' 'exit 0' > "$policy.chops"
  chmod 755 "$policy.chops"; mv -f "$policy.chops" "$policy"
  trap 'rm -f "$policy"' EXIT
fi
if [ -n "$(dpkg --audit 2>/dev/null)" ]; then dpkg --configure -a; fi
apt-get -o DPkg::Lock::Timeout=300 -q -y --no-install-recommends --allow-downgrades --allow-change-held-packages -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef install ${specs}
apt-mark hold ${names}`;
  return `echo "== chops run ${runId}: $(date -u +%FT%TZ) install ${Object.entries(versionsToInstall)
    .map(([n, v]) => `${n}=${v}`)
    .join(' ')}" >> ${log}
setsid -w sh -c ${shq(inner)} >> ${log} 2>&1 < /dev/null &
wait $!; rc=$?
tail -n 30 ${log}
exit $rc`;
}

async function install(host: HostHandle, to: Record<string, string>, runId?: string): Promise<number> {
  const t0 = performance.now();
  await host.runString('exec', installScript(to, runId), { timeoutMs: 20 * 60_000 });
  return Math.round(performance.now() - t0);
}

const installedNow = (host: HostHandle) => `upgrade.installed-now:${host.name}`;

/** Install the target version of every installed ClickHouse package and hold them; the server keeps running. */
export const installPackagesStep: Step<UpgradeParams> = {
  name: 'install packages',
  description: 'every ClickHouse package at --version, held; no restart (policy-rc.d denies the package scripts one)',
  skipIf: 'already installed and held',
  run: async (ctx) => {
    const { host } = ctx;
    const target = targetOf(ctx);
    const facts = await host.fact(installedClickhousePackages);
    const names = facts.installed.map((p) => p.name);
    const installed = facts.installed.every((p) => p.version === target);
    if (installed && names.every((n) => facts.held.includes(n))) return { changed: false, skipped: `already ${target}, held` };
    // Kept before the first change: a rollback (or a resumed run's rollback) goes back to these.
    if (!ctx.memory.get(PREVIOUS) && !installed) ctx.memory.set(PREVIOUS, versions(facts));
    if (installed) {
      await host.$`apt-mark hold ${names}`;
      return { note: `already ${target}; held now`, data: { held: names } };
    }
    const installMs = await install(host, Object.fromEntries(names.map((n) => [n, target])), ctx.run.runId);
    ctx.run.shared.set(installedNow(host), true); // this process installed it: the server cannot run it yet
    return {
      note: `${listVersions(versions(facts))} → ${target} in ${formatDuration(installMs)}, held; server not restarted`,
      data: { from: versions(facts), to: target, installMs },
    };
  },
  // The server never went down in this replica's sequence (or the stop's rollback already put the packages back).
  rollback: async (ctx) => {
    await restorePrevious(ctx);
  },
};

/** Install the remembered previous versions again when the host has others now; true when it did. */
async function restorePrevious(ctx: StepContext<UpgradeParams>): Promise<boolean> {
  const prev = ctx.memory.get<Record<string, string>>(PREVIOUS);
  if (!prev) return false;
  ctx.host.facts.clear();
  const facts = await ctx.host.fact(installedClickhousePackages);
  if (facts.installed.every((p) => prev[p.name] === undefined || prev[p.name] === p.version)) return false;
  ctx.host.note(`installing the previous ${listVersions(prev)} again`);
  await install(ctx.host, prev, ctx.run.runId);
  return true;
}

/** Is the replica already running the target (installed, held, restarted on it)? Gates and stop skip then. */
export async function runsTarget(ctx: StepContext<UpgradeParams>): Promise<string | undefined> {
  const target = ctx.memory.get<string>(TARGET);
  if (!target || ctx.run.shared.get(installedNow(ctx.host))) return undefined;
  // One after the other on the host's shell: cheaper than a channel each, and the first "no" ends it.
  if ((await serviceState(ctx.host)) !== 'active') return undefined;
  const facts = await ctx.host.fact(installedClickhousePackages);
  if (!facts.installed.length || !facts.installed.every((p) => p.version === target && facts.held.includes(p.name))) return undefined;
  const proc = await ctx.host.fact(serverProcess);
  if (!proc.pid || proc.deleted.length) return undefined;
  try {
    const client = await chClient(ctx.run, ctx.host.def);
    const info = await readQueryFact(ctx.host, client, serverInfo);
    return info.version === releaseOf(target) ? `already runs ${target} (version() ${info.version})` : undefined;
  } catch {
    return undefined;
  }
}

/** STEP, skipped on a replica that already runs the target version (a re-run, a resumed run). */
export function unlessRunsTarget(step: Step<any>): Step<any> {
  return {
    ...step,
    skipIf: step.skipIf ? `${step.skipIf}, or the replica already runs --version` : 'the replica already runs --version',
    run: async (ctx) => {
      const done = await runsTarget(ctx);
      return done ? { changed: false, skipped: done } : step.run(ctx);
    },
  };
}

/** Before the stop: the server's pid, so the verification can tell a new process from the old one. */
export async function rememberPid(ctx: StepContext<UpgradeParams>): Promise<void> {
  const p = await ctx.host.fact(serverProcess);
  if (p.pid) ctx.memory.set(PID_BEFORE, p.pid);
}

/**
 * Rollback of a replica whose new version did not come back: the previous packages again, then
 * the server (whatever it runs now: a crash loop, a failed unit, an unhealthy process) restarted
 * on them and waited for until healthy. Replaces the plain stop step's rollback (start it).
 */
export async function rollbackUpgrade(ctx: StepContext<UpgradeParams>): Promise<void> {
  const { host } = ctx;
  const prev = ctx.memory.get<Record<string, string>>(PREVIOUS);
  await restorePrevious(ctx);
  const c = host.def.clickhouse;
  if (!c.startCommand) await host.$({ timeoutMs: 300_000 })`systemctl stop ${c.service}; systemctl reset-failed ${c.service} 2>/dev/null || true`;
  else if ((await serviceState(host)) === 'active' && c.stopCommand) await host.runString('exec', c.stopCommand, { timeoutMs: 300_000 });
  const since = new Date();
  await startService(host);
  const healthy = await waitReplicaHealthy(ctx as unknown as StepContext, { since });
  await releaseNodeLock(ctx);
  const text = `${host.name} rolled back to ${prev ? listVersions(prev) : 'the installed packages'} and ${healthy?.note ?? 'healthy'}`;
  host.note(text);
  ctx.run.emit({ type: 'warning', host: host.name, text });
}

/** Tie configuration to the upgrade: --config files go into config.d while the server is down, between the binaries and the start. */
export const pushConfigStep: Step<UpgradeParams> = {
  name: 'push new-version configuration',
  description: 'the --config files into config.d, after the stop and before the start of the new binary',
  skipIf: 'no --config, or the files are already there',
  run: async (ctx) => {
    const files = ctx.params.config ?? [];
    if (!files.length) return { changed: false, skipped: 'no --config' };
    const kept = ctx.memory.get<Array<{ dest: string; existed: boolean }>>(CONFIG) ?? [];
    const changed: string[] = [];
    for (const local of files) {
      const dest = `${CONFIG_DIR}/${path.basename(local)}`;
      if (!kept.some((k) => k.dest === dest)) {
        // the file it replaces is kept next to it (not *.xml: the server does not read it), for the rollback
        const r = await ctx.host.$({ nothrow: true })`test -e ${dest} && cp -p ${dest} ${`${dest}.chops-previous`}`;
        kept.push({ dest, existed: r.code === 0 });
        ctx.memory.set(CONFIG, kept);
      }
      const put = await ctx.host.putFile(dest, readFileSync(local, 'utf8'), { mode: '0644', owner: 'root' });
      if (put.changed) changed.push(dest);
    }
    return changed.length ? { note: `wrote ${changed.join(', ')}`, data: { written: changed } } : { changed: false, skipped: 'already there' };
  },
  rollback: async (ctx) => {
    for (const k of ctx.memory.get<Array<{ dest: string; existed: boolean }>>(CONFIG) ?? []) {
      if (k.existed) await ctx.host.$`mv -f ${`${k.dest}.chops-previous`} ${k.dest}`;
      else await ctx.host.$`rm -f ${k.dest}`;
    }
  },
};

/** --config files must exist and be readable XML/YAML file names before anything connects. */
export function checkConfigFiles(files: string[] | undefined): string | undefined {
  for (const f of files ?? []) {
    if (!existsSync(f)) return `--config ${f}: no such file`;
    if (!/\.(xml|conf|ya?ml)$/.test(f)) return `--config ${f}: the server reads only the *.xml, *.conf, *.yaml and *.yml files of config.d`;
  }
  return undefined;
}

export interface VerifiedVersion {
  version: string;
  release: string;
  pid: number;
  startedAt?: string;
  previousPid?: number;
}

/** Pure: what the running server and the packages say, against the target. Problems, or none. */
export function versionProblems(target: string, facts: PackageFacts, proc: ServerProcess, running: string, pidBefore?: number): string[] {
  const p: string[] = [];
  const release = releaseOf(target);
  if (running !== release) p.push(`the server reports version() ${running}, the package ${target} is release ${release}`);
  const off = facts.installed.filter((x) => x.version !== target);
  if (off.length) p.push(`installed: ${off.map((x) => `${x.name} ${x.version}`).join(', ')} (not ${target})`);
  const loose = facts.installed.filter((x) => !facts.held.includes(x.name)).map((x) => x.name);
  if (loose.length) p.push(`not held: ${loose.join(', ')}`);
  if (!proc.pid) p.push('no server process');
  else {
    if (proc.deleted.length) p.push(`the server process ${proc.pid} still runs replaced files: ${proc.deleted.slice(0, 3).join(', ')}`);
    if (pidBefore !== undefined && proc.pid === pidBefore) p.push(`the server process is still ${proc.pid}, the one from before the stop`);
  }
  return p;
}

/** After the restart: the running server is the target version, started from the installed files. */
export const verifyVersionStep: Step<UpgradeParams> = {
  name: 'verify version',
  description: "version() is the package's release, the process runs the installed files (none replaced since its start), packages held",
  run: async (ctx) => {
    const target = targetOf(ctx);
    // A plan installed nothing: what runs now is not what a run would verify.
    const verified = await ctx.host.whenApplied<StepResult | undefined>(undefined, () => verifyNow(ctx, target));
    return (
      verified ?? { changed: false, note: `would check version() = ${releaseOf(target)}, ${target} installed and held, a new process on the installed files` }
    );
  },
};

async function verifyNow(ctx: StepContext<UpgradeParams>, target: string): Promise<StepResult> {
  const { host } = ctx;
  const facts = await host.fact(installedClickhousePackages); // one after the other on the host's shell
  const proc = await host.fact(serverProcess);
  const client = await chClient(ctx.run, host.def);
  const info = await readQueryFact(host, client, serverInfo);
  const pidBefore = ctx.memory.get<number>(PID_BEFORE);
  const problems = versionProblems(target, facts, proc, info.version, pidBefore);
  if (problems.length)
    throw new ChopsError(`${host.name}: the upgrade to ${target} is not what runs: ${problems.join('; ')}`, {
      hint: 'the replica is rolled back to its previous version',
    });
  const data: VerifiedVersion = {
    version: target,
    release: info.version,
    pid: proc.pid!,
    startedAt: proc.startedAtMs ? new Date(proc.startedAtMs).toISOString() : undefined,
    previousPid: pidBefore,
  };
  return {
    changed: false,
    note: `runs ${target} (version() ${info.version}, pid ${proc.pid}${pidBefore ? ` was ${pidBefore}` : ''}, no replaced file mapped), held`,
    data,
  };
}
