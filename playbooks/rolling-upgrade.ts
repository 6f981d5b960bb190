// rolling-upgrade --version V: upgrade the ClickHouse packages replica by replica (shards in
// parallel), never taking a shard's last healthy replica down. First every host must offer V
// (refused before any change when one does not), then the topology cross-check (it reports mixed
// versions in a shard), then per replica: install V and hold it without restarting the server,
// the gates, stop, the --config files that only V understands, start, wait healthy, verify that
// the running server is V. A replica whose V does not come back healthy (or does not verify) is
// rolled back: its previous packages, remembered before the install, are installed again and
// started, and the run stops. --canary N upgrades N replicas first (never two of one shard) and
// watches them for --soak before the rest.
import { definePlaybook, type Phase } from '../src/engine/playbook.js';
import { pickCanaries, withCanaries } from '../src/engine/canary.js';
import { UsageError } from '../src/errors.js';
import { DURATION_RANGES, decimalInt, durationMs, show } from '../src/inventory/values.js';
import { formatDuration } from '../src/format.js';
import {
  checkTopologyStep,
  checkPeersStep,
  checkIdleStep,
  stopClickHouseStep,
  startClickHouseStep,
  waitHealthyStep,
  clickhouseServing,
} from '../tasks/clickhouse/replica-steps.js';
import {
  checkConfigFiles,
  checkVersionOfferedStep,
  installPackagesStep,
  pushConfigStep,
  rememberPid,
  rollbackUpgrade,
  unlessRunsTarget,
  verifyVersionStep,
  type UpgradeParams,
} from '../tasks/clickhouse/upgrade.js';
import { soakStep } from '../tasks/clickhouse/soak.js';
import { GATE_PARAMS, type GateParams } from '../tasks/clickhouse/gate-params.js';

interface Params extends UpgradeParams, GateParams {
  canary?: number;
  soak?: number;
}

const DEFAULT_SOAK_MS = 10 * 60_000;

const stopForUpgrade = unlessRunsTarget({
  ...stopClickHouseStep,
  disruptive: true, // asks before the run
  run: async (ctx) => {
    await rememberPid(ctx); // the verification tells the new process from this one
    return stopClickHouseStep.run(ctx);
  },
  rollback: rollbackUpgrade, // the previous packages again, started, healthy
});

function replicaPhase(): Phase<Params> {
  return {
    name: 'upgrade replicas',
    scope: 'rolling',
    replicaServing: clickhouseServing, // on resume: still serving → its gates are checked again
    steps: [
      installPackagesStep, //              V installed and held; the server still runs the old one
      unlessRunsTarget(checkPeersStep), // the other replicas of the shard are up, writable, caught up
      unlessRunsTarget(checkIdleStep), //  this replica: empty queue, no mutations, no sends, no queries
      stopForUpgrade, //                   rollback: previous packages, start, wait healthy
      pushConfigStep, //                   --config files, while no binary runs
      startClickHouseStep, //              the new binary
      waitHealthyStep, //                  answers, writable, caught up, sees its shard
      verifyVersionStep, //                version() = V's release, the process runs the installed files
    ],
  };
}

export default definePlaybook<Params>({
  name: 'rolling-upgrade',
  description:
    'Upgrade the ClickHouse packages replica by replica (shards in parallel): install and hold --version without a restart, gated stop/start, verify; rollback on failure; optional canaries and soak',
  params: [
    {
      name: 'version',
      type: 'string',
      required: true,
      description: 'the package version to install (exact, or the release when the repositories offer one package version of it: 24.8.4.13)',
    },
    {
      name: 'canary',
      type: 'int',
      description: 'upgrade N replicas first (never two of one shard), soak, then the rest',
      check: (w) => decimalInt(w, 1, 1000),
    },
    {
      name: 'soak',
      type: 'duration',
      description: 'with --canary: how long the canaries are watched (default 10m)',
      check: (w) => durationMs(w, DURATION_RANGES.soak),
    },
    {
      name: 'config',
      type: 'strings',
      description: 'local file for config.d that only the new version understands: pushed after the stop, before the new binary starts (repeatable)',
    },
    { name: 'allow-downgrade', type: 'boolean', description: 'allow a version older than the installed one' },
    { name: 'apt-update', type: 'boolean', default: true, description: 'run apt-get update before checking the version is offered' },
    ...GATE_PARAMS,
  ],
  phases(p) {
    // (`chops graph` draws the flow with the placeholder <version>)
    if (p.version !== '<version>' && !/^[0-9][A-Za-z0-9.+~:-]*$/.test(p.version))
      throw new UsageError(`--version ${show(p.version)}: not a package version`, {
        hint: 'give a Debian package version (18.16.1+ds-7.3+b2) or a release (24.8.4.13)',
      });
    if (p.soak !== undefined && !p.canary) throw new UsageError('--soak is for the canaries: it needs --canary N', { hint: 'add --canary 1 (or drop --soak)' });
    const bad = checkConfigFiles(p.config);
    if (bad) throw new UsageError(bad, { hint: 'give existing *.xml or *.yaml files for /etc/clickhouse-server/config.d' });
    const soakMs = p.soak ?? DEFAULT_SOAK_MS;
    const canaries = p.canary ?? 0;
    const back = 'chops run rolling-upgrade --version <previous> --allow-downgrade';
    return [
      { name: 'check packages', scope: 'each', steps: [checkVersionOfferedStep] }, // refused everywhere before any change
      { name: 'preflight', scope: 'once', steps: [checkTopologyStep] }, // inventory == servers; mixed versions reported
      ...withCanaries(
        replicaPhase(),
        canaries,
        soakStep((sel) => pickCanaries(sel, canaries), soakMs, back),
      ),
    ];
  },
  summary(results) {
    const rows = new Map<string, Record<string, any>>();
    for (const r of results) {
      if (!r.phase.startsWith('upgrade replicas')) continue;
      const row = rows.get(r.host) ?? {};
      Object.assign(row, r.data as object);
      rows.set(r.host, row);
    }
    if (!rows.size) return undefined;
    const lines = [...rows].map(([host, d]) => {
      const down = d.stopMs !== undefined && d.caughtUpAfterMs !== undefined ? `, down ${formatDuration(d.stopMs + d.caughtUpAfterMs)}` : '';
      const inst = d.installMs !== undefined ? `, install ${formatDuration(d.installMs)}` : '';
      return `  ${host}: ${d.from ? `${Object.values(d.from)[0]} → ` : ''}${d.version ?? d.to ?? '?'}${inst}${down}${d.release ? `, version() ${d.release}` : ''}`;
    });
    return `upgraded replicas:\n${lines.join('\n')}\n`;
  },
});
