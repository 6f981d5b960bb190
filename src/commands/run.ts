// `chops run`, `chops plan`, `chops resume`: one code path. Plan uses the recording transport
// and writes no state; run and resume hold the cluster lock, write state and a run log.
import type { Host, Inventory } from '../inventory/types.js';
import { type Playbook, type Phase, phaseHosts } from '../engine/playbook.js';
import { Runner, errorText, type ExecuteResult } from '../engine/runner.js';
import { Session } from '../engine/session.js';
import { chooseOutput, makeOutput, type Output } from '../engine/output.js';
import { ChopsError, CommandError, UsageError, tail } from '../errors.js';
import { buildSteps } from '../run/state/steps.js';
import { RunStore } from '../run/state/store.js';
import { assertResumable, reopenForResume } from '../run/state/resume-policy.js';
import { paramsHash } from '../run/state/ids.js';
import type { RunState } from '../run/state/model.js';
import { redactor } from '../secrets.js';
import { shq } from '../quote.js';
import { assertCredentials, flagText, openInventory, positiveInt, selectHosts, type GlobalFlags } from './common.js';
import { show } from '../inventory/values.js';
import { parseParams } from '../engine/params.js';
import { formatDuration } from '../format.js';
import { confirmDestructive } from './confirm.js';

interface Prepared {
  inventory: Inventory;
  playbook: Playbook;
  params: Record<string, unknown>;
  selected: Host[];
  output: Output;
  /** Built once from the parameters (this also validates their combinations). */
  phases: Phase[];
  parallelShards: number;
  parallelHosts: number;
}

export async function planCommand(name: string, flags: GlobalFlags, raw: Record<string, unknown>): Promise<number> {
  const p = await prepare(name, flags, raw);
  await preloadSshFor(p.selected);
  // The plan is the output; step-by-step progress lines would only bury it.
  if (p.output.mode !== 'json') p.output = makeOutput(p.output.mode, process.stdout, process.stderr, { quietSteps: true });
  const runner = new Runner({ ...base(p), plan: true });
  p.output.event({ type: 'plan-start', playbook: p.playbook.name, params: p.params, hosts: p.selected.map((h) => h.name) });
  if (p.output.mode !== 'json') p.output.text(`Plan for ${p.playbook.name} on ${p.selected.length} host(s) — nothing will be changed; probes run for real.\n`);
  await runner.verifyHosts().catch(async (err) => {
    await runner.close();
    throw err;
  });
  const res = await runner.execute();
  const { printPlan } = await import('./plan-print.js');
  printPlan(p.output, runner.phaseList, res, p.selected, runCommandLine(process.argv));
  if (!res.ok) return reportFailure(p.output, res, undefined);
  return 0;
}

export async function runCommand(name: string, flags: GlobalFlags, raw: Record<string, unknown>): Promise<number> {
  const p = await prepare(name, flags, raw);
  await confirmDestructive(p.phases, p.selected, flags, p.playbook.name);
  await preloadSshFor(p.selected);
  // The connections open while the run's state is created (SSH handshakes are the long pole of a
  // run's start; nothing is sent on them before the lock is taken and the hosts are verified).
  const session = new Session(p.inventory, false);
  session.warm(p.selected);
  const store = new RunStore(p.inventory.stateDir, { redactor });
  let state: RunState;
  try {
    state = await store.create({
      playbook: p.playbook.name,
      params: p.params,
      inventory: p.inventory.path,
      inventoryHash: p.inventory.hash,
      cluster: clusterKey(p.selected),
      limit: flags.limit ? String(flags.limit).split(',') : undefined,
      steps: stepTree(p.phases, p.selected),
    });
  } catch (err) {
    await session.close();
    throw err;
  }
  return execute(p, store, state, false, session);
}

export async function resumeCommand(runId: string | undefined, flags: GlobalFlags): Promise<number> {
  const limits = checkRunFlags(flags);
  const inventory = await openInventory(flags);
  const store = new RunStore(inventory.stateDir, { redactor });
  const { abandonedInfo, latestResumable } = await import('./abandon.js');
  const state = runId ? await store.load(String(runId)) : await latestResumable(store, inventory.path);
  if (!state) throw new UsageError(`there is no unfinished run of ${inventory.path} to resume`, { hint: 'list runs with `chops runs`' });
  const abandoned = await abandonedInfo(store, state.id);
  if (abandoned)
    throw new UsageError(`run ${state.id} was abandoned at ${abandoned.at} by ${abandoned.by}; it is not resumed`, {
      hint: `start a new run: chops run ${state.playbook}`,
    });
  if (state.inventory !== inventory.path) {
    throw new UsageError(`run ${state.id} used inventory ${state.inventory}, not ${inventory.path}`, { hint: `resume with -i ${state.inventory}` });
  }
  // The parameters come from the state itself; recomputing their hash catches a hand-edited file.
  assertResumable(state, { inventoryHash: inventory.hash, paramsHash: paramsHash(state.params), params: state.params });
  if (flags.limit !== undefined && String(flags.limit) !== (state.limit?.join(',') ?? '')) {
    throw new UsageError(
      `run ${state.id} was started with ${state.limit ? `--limit ${state.limit.join(',')}` : 'no --limit'}; a resume works on the same hosts`,
      {
        hint: `drop --limit (or start a new run with \`chops run ${state.playbook} --limit …\`)`,
      },
    );
  }
  const { loadPlaybook } = await import('../../playbooks/index.js');
  const playbook = await loadPlaybook(state.playbook);
  const params = state.params;
  const selected = await selectHosts(inventory, state.limit?.join(','));
  const output = makeOutput(chooseOutput(flags.output, !!flags.json));
  // The phases must be the ones the run started with; a playbook edited since would misalign.
  const phases = playbook.phases(params, inventory);
  const p: Prepared = { inventory, playbook, params, selected, output, phases, ...limits };
  const expected = stepTree(phases, selected);
  if (
    JSON.stringify(expected.map((ph) => [ph.phase, ph.steps.map((s) => s.name)])) !==
    JSON.stringify(state.steps.map((ph) => [ph.phase, ph.steps.map((s) => s.name)]))
  ) {
    throw new UsageError(`playbook ${playbook.name} has changed since run ${state.id} started (different phases or steps)`, {
      hint: 'finish the work by hand or start a new run with `chops run`',
    });
  }
  await assertCredentials(inventory, selected);
  await confirmDestructive(phases, selected, flags, playbook.name);
  await readSecretsUpFront(selected, params);
  await preloadSshFor(selected);
  reopenForResume(state);
  output.text(
    `Resuming run ${state.id} (${playbook.name}, started ${state.createdAt}, ${state.outcome})${runId ? '' : ' — the latest unfinished run of this inventory'}; steps already done are skipped.`,
  );
  return execute(p, store, state, true);
}

/**
 * Run for real through executeRun, with the operator's signals: the first Ctrl-C starts nothing
 * new and lets replicas in progress finish (never leaves one stopped); the second saves the
 * state and leaves at once — resume redoes the steps that were running.
 */
async function execute(p: Prepared, store: RunStore, state: RunState, resuming: boolean, session?: Session): Promise<number> {
  const stop = new AbortController();
  const abort = new AbortController();
  const resumeLine = `chops resume ${state.id} -i ${p.inventory.path}`;
  const onSignal = (sig: string) => {
    if (!stop.signal.aborted) {
      stop.abort(sig);
      // At once, above the live display (which must neither swallow nor delay it).
      p.output.notice(
        `${sig}: stopping — nothing new starts, replicas in progress finish their steps. ${sig === 'SIGINT' ? 'Press Ctrl-C again' : 'Send it again'} to abort at once.\n  resume later with: ${resumeLine}`,
      );
      return;
    }
    abort.abort(sig);
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const { executeRun } = await import('../engine/execute-run.js');
    const report = await executeRun({ ...base(p), store, state, resuming, redactor, stop: stop.signal, abort: abort.signal, session });
    if (report.outcome === 'aborted') {
      p.output.end(); // the runner is still at work: freeze the display before the last word
      process.stderr.write(`Aborted by ${report.stoppedBy}; the state is saved. Resume with: ${resumeLine}\n`);
      process.exit(130);
    }
    const res = report.result!;
    if (p.playbook.summary && p.output.mode !== 'json') {
      const s = p.playbook.summary(res.results, p.params);
      if (s) p.output.text(s);
    }
    if (report.outcome === 'interrupted') {
      p.output.text(`✖ run ${state.id} stopped by ${report.stoppedBy ?? 'a signal'}; every replica in progress finished its steps.\n  next:    ${resumeLine}`);
      return 130;
    }
    if (report.outcome === 'failed') return reportFailure(p.output, res, state, report.logPath);
    if (p.output.mode !== 'json') p.output.text(`✔ run ${state.id} succeeded in ${formatDuration(report.durationMs)}`);
    return 0;
  } finally {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
  }
}

/** The `chops run …` line that performs what `chops plan …` (ARGV) showed: same arguments, shell-quoted. */
export function runCommandLine(argv: string[]): string {
  const args = argv.slice(2);
  const at = args.indexOf('plan');
  const rest = at >= 0 ? args.slice(at + 1) : args;
  const word = (a: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : shq(a));
  return ['chops', 'run', ...args.slice(0, Math.max(0, at)), ...rest].map((a, i) => (i < 2 ? a : word(a))).join(' ');
}

function base(p: Prepared) {
  const { playbook, params, inventory, selected, output, phases, parallelShards, parallelHosts } = p;
  return { playbook, params, inventory, selected, output, phases, parallelShards, parallelHosts };
}

/** Flags are checked before anything is created or connected. */
function checkRunFlags(flags: GlobalFlags): { parallelShards: number; parallelHosts: number } {
  const f = flags as Record<string, unknown>;
  const output = flagText(f, 'output', 'tty, plain or json');
  if (output !== undefined && !['tty', 'default', 'plain', 'json'].includes(output)) {
    throw new UsageError(`--output must be tty, plain or json, got ${show(output)}`);
  }
  flagText(f, 'inventory', 'an inventory file');
  flagText(f, 'limit', 'host names (--limit h1,h2)');
  return {
    parallelShards: positiveInt(f, 'parallel-shards', 2),
    parallelHosts: positiveInt(f, 'parallel-hosts', 64),
  };
}

async function prepare(name: string, flags: GlobalFlags, raw: Record<string, unknown>): Promise<Prepared> {
  const limits = checkRunFlags(flags);
  const output = makeOutput(chooseOutput(flags.output, !!flags.json));
  const { loadPlaybook } = await import('../../playbooks/index.js');
  const playbook = await loadPlaybook(name);
  const params = parseParams(playbook, raw);
  const inventory = await openInventory(flags);
  const selected = await selectHosts(inventory, flags);
  // Building the phases validates parameter combinations before anything connects.
  const phases = playbook.phases(params, inventory);
  // ... and each phase's choice of hosts (canaries) against the selection.
  for (const ph of phases) phaseHosts(ph, selected);
  await assertCredentials(inventory, selected);
  await readSecretsUpFront(selected, params);
  return { inventory, playbook, params, selected, output, phases, ...limits };
}

/**
 * Everything local is checked and the run goes ahead: start loading the SSH library now, in the
 * background, while the run is set up (opening the TCP connections before it loads was tried and
 * measured no difference at 20 hosts).
 */
async function preloadSshFor(selected: Host[]): Promise<void> {
  if (!selected.some((h) => h.connection !== 'local')) return;
  const m = await import('../transport/ssh.js');
  m.preloadSsh();
}

/**
 * Read every secret the selected hosts reference before anything runs: a missing or loose secret
 * fails the run before the first change, and every secret is known to the redactor before the
 * first line of output (a command may echo one).
 */
async function readSecretsUpFront(hosts: Host[], params: Record<string, unknown>): Promise<void> {
  const { readSecret } = await import('../inventory/secrets.js');
  const secrets: string[] = [];
  for (const h of hosts) {
    if (h.clickhouse.password) secrets.push(await readSecret(h.clickhouse.password, h.where));
    if (h.ssh.passphrase) secrets.push(await readSecret(h.ssh.passphrase, h.where));
  }
  // Parameters are kept verbatim in the state file (resume needs them): a secret typed into one
  // would be written to disk. Refuse, and say how to pass it instead.
  const text = JSON.stringify(params);
  if (secrets.some((s) => s.length >= 3 && text.includes(s))) {
    throw new UsageError('a playbook parameter contains a secret from the inventory; it would be stored in the run state and logs', {
      hint: 'read it on the host instead (e.g. --cmd \'… "$(cat /root/secret)"\') or reference it through the inventory',
    });
  }
}

function stepTree(phases: Phase[], selected: Host[]) {
  return buildSteps(
    phases.map((ph) => ({ phase: ph.name, scope: ph.scope, steps: ph.steps.map((s) => s.name), hosts: phaseHosts(ph, selected).map((h) => h.name) })),
  );
}

function clusterKey(hosts: Host[]): string {
  return [...new Set(hosts.map((h) => h.cluster))].join(',');
}

function reportFailure(out: Output, res: ExecuteResult, state: RunState | undefined, logPath?: string): number {
  const f = res.error;
  const lines: string[] = [];
  if (f) {
    const e = f.error;
    lines.push(`✖ ${state ? `run ${state.id} failed` : 'plan failed'}`);
    lines.push(`  host:    ${f.host}`);
    lines.push(`  step:    ${f.phase} › ${f.step}`);
    if (e instanceof CommandError) {
      lines.push(`  command: ${redactor.redact(e.command)}`);
      lines.push(`  exit:    ${e.code}`);
      if (e.stderr.trim()) lines.push(`  stderr:  ${redactor.redact(tail(e.stderr, 5))}`);
    } else {
      lines.push(`  error:   ${redactor.redact(errorText(e))}`);
    }
    if (e instanceof ChopsError && e.hint) lines.push(`  fix:     ${e.hint}`);
    if (logPath) lines.push(`  log:     ${logPath}`);
    if (state) {
      lines.push(`  next:    fix the cause, then resume from this step: chops resume ${state.id} -i ${state.inventory}`);
    }
  } else {
    lines.push('✖ stopped before finishing');
  }
  if (out.mode === 'json')
    out.event({
      type: 'error',
      host: f?.host,
      phase: f?.phase,
      step: f?.step,
      error: f ? redactor.redact(errorText(f.error)) : 'stopped',
      resume: state ? `chops resume ${state.id}` : undefined,
    });
  out.end(); // the progress lines still buffered go first: the failure reads last
  process.stderr.write(lines.join('\n') + '\n');
  return 1;
}
