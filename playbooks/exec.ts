// exec: run the given shell command(s) on every selected host — in parallel (default), one
// replica at a time per shard (--scope rolling), or once. Optionally reboot each host afterwards
// and run --after commands once it is back with a new boot id. Rolling runs are wrapped in the
// replica health gates: topology checked once, peers and the replica itself checked before its
// commands, and the replica waited for (healthy, caught up) before the next one of its shard.
import { definePlaybook, type Phase, type Step } from '../src/engine/playbook.js';
import { rebootAndWait } from '../tasks/system/reboot.js';
import { checkTopologyStep, withReplicaGates, clickhouseServing } from '../tasks/clickhouse/replica-steps.js';
import { GATE_PARAMS, type GateParams } from '../tasks/clickhouse/gate-params.js';

interface Params extends GateParams {
  cmd: string[];
  scope: 'each' | 'rolling' | 'once';
  rolling?: boolean;
  gates: boolean;
  sudo?: boolean;
  reboot?: boolean;
  'reboot-timeout': number;
  after?: string[];
  timeout?: number;
}

// Commands in a rolling phase are disruptive: running them one replica at a time behind the gates
// is for work that takes the server down, so the run asks first (--yes without a terminal).
function commandSteps(cmds: string[], p: Params, prefix = '', disruptive = false): Step<Params>[] {
  return cmds.map((cmd, i) => ({
    name: `${prefix}${cmds.length > 1 ? `#${i + 1} ` : ''}$ ${cmd}`,
    ...(disruptive ? { disruptive } : {}),
    run: async ({ host }) => {
      const r = await host.runString('exec', cmd, { sudo: p.sudo || undefined, timeoutMs: p.timeout });
      return { data: { command: cmd, code: r.code, stdout: r.stdout, stderr: r.stderr }, note: r.stdout.trim().split('\n').pop()?.slice(0, 120) };
    },
  }));
}

export default definePlaybook<Params>({
  name: 'exec',
  description: 'Run shell command(s) on every selected host, in parallel, rolling (one replica per shard at a time) or once; optionally reboot and follow',
  params: [
    { name: 'cmd', type: 'strings', required: true, description: 'shell command to run (repeat --cmd for several, run in order)' },
    { name: 'scope', type: 'choice', choices: ['each', 'rolling', 'once'], default: 'each', description: 'each host in parallel, rolling, or once' },
    { name: 'rolling', type: 'boolean', description: 'same as --scope rolling' },
    {
      name: 'gates',
      type: 'boolean',
      default: true,
      description: 'rolling only: ClickHouse health gates around each replica (false for work on hosts whose server is not running)',
    },
    { name: 'sudo', type: 'boolean', description: 'run through sudo -n even if the inventory does not say so' },
    { name: 'timeout', type: 'duration', description: 'kill a command that runs longer than this' },
    { name: 'reboot', type: 'boolean', description: 'reboot each host after the commands and wait for it (new boot id)' },
    { name: 'reboot-timeout', type: 'duration', default: 600_000, description: 'how long to wait for a rebooted host' },
    { name: 'after', type: 'strings', description: 'command(s) to run after the reboot' },
    ...GATE_PARAMS,
  ],
  phases(p) {
    const scope = p.rolling ? 'rolling' : p.scope;
    const steps = commandSteps(p.cmd, p, '', scope === 'rolling');
    if (p.reboot) {
      steps.push({
        name: 'reboot and wait for a new boot',
        disruptive: true,
        waitsFor: 'ssh answers with a new boot id',
        downtime: 'starts',
        run: ({ host, run }) => rebootAndWait(host, { timeoutMs: p['reboot-timeout'], runId: run.runId }),
      });
      steps.push(...commandSteps(p.after ?? [], p, 'after reboot ', scope === 'rolling'));
    }
    if (scope !== 'rolling' || !p.gates) return [{ name: 'commands', scope, steps }];
    const phases: Phase<Params>[] = [
      { name: 'preflight', scope: 'once', steps: [checkTopologyStep] },
      { name: 'commands', scope, steps: withReplicaGates(steps), replicaServing: clickhouseServing },
    ];
    return phases;
  },
  summary(results) {
    const lines: string[] = [];
    for (const r of results) {
      const d = r.data as { stdout?: string; stderr?: string; code?: number };
      if (d?.stdout === undefined) continue;
      const out = (d.stdout + (d.stderr ? d.stderr : '')).trimEnd();
      if (!out) continue;
      for (const l of out.split('\n')) lines.push(`${r.host} | ${l}`);
    }
    return lines.join('\n') || undefined;
  },
});
