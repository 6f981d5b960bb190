// bench:fanout — the 10-command workload of performance-anchors.md on 20 lab hosts, through
// `chops run exec`, raw ssh2 and Ansible (pipelining + ControlPersist), measured side by side,
// round-robin, in one run; plus cold start-up of `chops --help`, `chops inventory check` and
// `chops plan`. Prints medians and ratios. Not a test: the 2 shared cores are noisy, so only
// ratios count.
//
// The real floor (issue 8 #12) is raw ssh2 with one connection per host and ONE exec channel
// running all ten commands; chops' wall and CPU are given as ratios to it (targets ≤ 1.2× wall,
// ≤ 1.5× CPU). Raw ssh2 with an exec channel per command is shown too, for comparison, and raw
// ssh2 feeding one `sh` each command in turn (chops' transport design, nothing around it). Wall,
// CPU (user + sys) and peak RSS are each process's own, from GNU time (/usr/bin/time -f).
import { execa } from 'execa';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { labUp } from '../test/lab/lab.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOSTS = Number(process.env.BENCH_HOSTS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CMDS = ['true', 'uname -a', 'cat /etc/hostname', 'date +%s', 'id -u', 'cat /proc/uptime', 'cat /proc/loadavg', 'echo hello', 'ls /etc/ssh', 'whoami'];

interface Timed {
  s: number;
  cpu: number;
  rssMb: number;
}

/** Run CMD ARGS under GNU time: the process's own wall, CPU (user + sys) and peak RSS. */
async function timeIt(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Timed> {
  const tf = join(ROOT, 'dist/bench/time.txt');
  // Output goes to a file, as the floor's would: read through a pipe, every line chops prints would
  // wake this process on the same two cores while the measured one runs.
  const of = join(ROOT, 'dist/bench/stdout.txt');
  const r = await execa('/usr/bin/time', ['-f', '%e %U %S %M', '-o', tf, cmd, ...args], {
    cwd: ROOT,
    env: { NO_COLOR: '1', ...env },
    reject: false,
    stdout: { file: of },
  });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.exitCode}):\n${r.stderr}\n${readFileSync(of, 'utf8').slice(-2000)}`);
  const [s, user, sys, rss] = readFileSync(tf, 'utf8').trim().split('\n').pop()!.split(/\s+/).map(Number);
  return { s, cpu: user + sys, rssMb: rss / 1024 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function ensureAnsible(): boolean {
  if (spawnSync('sh', ['-c', 'command -v ansible-playbook']).status === 0) return true;
  console.error('installing Debian ansible (apt-get)...');
  return (
    spawnSync('sh', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends ansible >/dev/null'], {
      stdio: 'inherit',
    }).status === 0
  );
}

const lab = await labUp({ name: 'fanout', hosts: HOSTS });
try {
  const dir = join(lab.dir, 'bench');
  mkdirSync(dir, { recursive: true });
  const hostsFile = join(dir, 'hosts.json');
  writeFileSync(hostsFile, JSON.stringify(lab.hosts.map((h) => ({ address: h.address, port: h.port }))));
  // Ansible inventory + playbook: the same 10 commands with the command module, one play over all hosts.
  const ini = [
    '[lab]',
    ...lab.hosts.map((h) => `${h.name} ansible_host=${h.address} ansible_port=${h.port}`),
    '',
    '[lab:vars]',
    'ansible_user=root',
    `ansible_ssh_private_key_file=${lab.identityFile}`,
    'ansible_python_interpreter=/usr/bin/python3',
    `ansible_ssh_common_args=-o UserKnownHostsFile=${lab.knownHosts} -o StrictHostKeyChecking=yes`,
  ].join('\n');
  writeFileSync(join(dir, 'hosts.ini'), ini + '\n');
  writeFileSync(join(dir, 'play.yml'), `- hosts: lab\n  gather_facts: false\n  tasks:\n${CMDS.map((c) => `    - command: ${JSON.stringify(c)}\n`).join('')}`);
  writeFileSync(
    join(dir, 'ansible.cfg'),
    `[defaults]\nforks = ${HOSTS}\nhost_key_checking = True\nstdout_callback = minimal\n[ssh_connection]\npipelining = True\nssh_args = -o ControlMaster=auto -o ControlPersist=60s\ncontrol_path = ${dir}/cp-%%h-%%p\n`,
  );
  const haveAnsible =
    ensureAnsible() &&
    spawnSync('sh', [
      '-c',
      `ssh -o BatchMode=yes -i ${lab.identityFile} -o UserKnownHostsFile=${lab.knownHosts} root@${lab.hosts[0].address} command -v python3`,
    ]).status === 0;
  if (!haveAnsible) console.error('Ansible column skipped: ansible or python3 on the lab hosts is missing');

  const chopsArgs = ['bin/chops.js', 'run', 'exec', '-i', lab.inventoryPath, '--output', 'plain', ...CMDS.flatMap((c) => ['--cmd', c])];
  // tsx costs start-up time; compile the floor once so both sides are plain node processes
  // (inside the repo, so `ssh2` resolves from its node_modules like chops' own bundle).
  const rawJs = join(ROOT, 'dist/bench/raw-ssh2.mjs');
  execFileSync(
    join(ROOT, 'node_modules/.bin/esbuild'),
    ['bench/raw-ssh2.ts', '--bundle', '--platform=node', '--format=esm', `--outfile=${rawJs}`, '--external:ssh2', '--log-level=error'],
    { cwd: ROOT },
  );
  const raw = (mode: 'per-command' | 'one-channel' | 'one-shell') => () =>
    timeIt(process.execPath, [rawJs, hostsFile, lab.identityFile, JSON.stringify(CMDS), mode]);
  const ways: Record<string, { label: string; run: () => Promise<Timed> }> = {
    floor: { label: 'raw ssh2, 1 conn/host, ONE channel for all 10 (floor)', run: raw('one-channel') },
    perCmd: { label: 'raw ssh2, 1 conn/host, 1 exec channel per command', run: raw('per-command') },
    // chops' own transport design with nothing around it: what recording each result before
    // sending the next command costs by itself (the rest of chops' figure is chops)
    shell: { label: 'raw ssh2, 1 conn/host, ONE sh fed each command in turn', run: raw('one-shell') },
    chops: { label: 'chops run exec --output plain (state, log)', run: () => timeIt(process.execPath, chopsArgs) },
  };
  if (haveAnsible)
    ways.ansible = {
      label: 'ansible-playbook (pipelining, ControlPersist)',
      run: () => timeIt('ansible-playbook', ['-i', join(dir, 'hosts.ini'), join(dir, 'play.yml')], { ANSIBLE_CONFIG: join(dir, 'ansible.cfg') }),
    };
  const t: Record<string, Timed[]> = Object.fromEntries(Object.keys(ways).map((k) => [k, []]));
  // warm-up (page cache, sshd first-connection costs)
  await ways.chops.run();
  await ways.floor.run();
  for (let i = 0; i < ROUNDS; i++) {
    for (const [k, w] of Object.entries(ways)) {
      // Each process alone: the previous way's sessions are still being torn down by the hosts'
      // sshd (and its processes reaped) for a moment after it exits, on the same 2 cores.
      await new Promise((r) => setTimeout(r, 1500));
      t[k].push(await w.run());
    }
    console.error(
      `round ${i + 1}/${ROUNDS}: ${Object.keys(ways)
        .map((k) => `${k} ${t[k].at(-1)!.s.toFixed(2)}s/${t[k].at(-1)!.cpu.toFixed(2)}s cpu`)
        .join(', ')}`,
    );
  }

  // Cold start-up (the page cache is warm, as on an operator's machine; node itself dominates):
  // --help; inventory check and plan exec on a local 4-host inventory (no connection at all);
  // plan exec on 4 lab hosts (4 SSH connections: plan verifies every host with `true`).
  const plan4 = join(dir, 'inventory-4.yml');
  const doc = parseYaml(readFileSync(lab.inventoryPath, 'utf8'));
  const cl = Object.values(doc.clusters)[0] as { shards: unknown[] };
  cl.shards = cl.shards.slice(0, 2);
  writeFileSync(plan4, stringifyYaml(doc));
  const local4 = join(dir, 'inventory-local-4.yml');
  writeFileSync(
    local4,
    `version: 1\nstate: {dir: ${dir}/state-local}\nclusters:\n  c1:\n    shards:\n      - replicas: [{host: a1, connection: local}, {host: a2, connection: local}]\n      - replicas: [{host: b1, connection: local}, {host: b2, connection: local}]\n`,
  );
  const starts: Record<string, { label: string; args: string[]; ms: number[] }> = {
    bare: { label: 'bare `node -e 0`', args: ['-e', '0'], ms: [] },
    help: { label: '`chops --help`', args: ['bin/chops.js', '--help'], ms: [] },
    check: { label: '`chops inventory check` (4 hosts, no connection)', args: ['bin/chops.js', 'inventory', 'check', '-i', plan4], ms: [] },
    planLocal: { label: '`chops plan exec` on 4 local hosts (no connection)', args: ['bin/chops.js', 'plan', 'exec', '-i', local4, '--cmd', 'true'], ms: [] },
    planSsh: { label: '`chops plan exec` on 4 lab hosts (4 SSH connections)', args: ['bin/chops.js', 'plan', 'exec', '-i', plan4, '--cmd', 'true'], ms: [] },
  };
  for (let i = 0; i < ROUNDS * 2; i++) for (const st of Object.values(starts)) st.ms.push((await timeIt(process.execPath, st.args)).s * 1000);

  const med = (k: string, f: keyof Timed) => median(t[k].map((x) => x[f]));
  const fl = { s: med('floor', 's'), cpu: med('floor', 'cpu') };
  console.log(
    `\nfan-out: ${HOSTS} hosts x ${CMDS.length} commands, median of ${ROUNDS} rounds (each process alone: wall, CPU user+sys, peak RSS; incl. node start-up)`,
  );
  console.log(`| ${'way'.padEnd(56)} | ${'wall s'.padStart(7)} | ${'CPU s'.padStart(6)} | ${'RSS MB'.padStart(6)} | vs the floor: wall, CPU`);
  for (const [k, w] of Object.entries(ways)) {
    const note =
      k === 'chops'
        ? ' (targets <= 1.2x wall, <= 1.5x CPU)'
        : k === 'ansible'
          ? ` = ${(med('ansible', 's') / med('chops', 's')).toFixed(1)}x chops' wall (target >= 25x)`
          : '';
    console.log(
      `| ${w.label.padEnd(56)} | ${med(k, 's').toFixed(3).padStart(7)} | ${med(k, 'cpu').toFixed(2).padStart(6)} | ${med(k, 'rssMb').toFixed(0).padStart(6)} | ${(med(k, 's') / fl.s).toFixed(2)}x, ${(med(k, 'cpu') / fl.cpu).toFixed(2)}x${note}`,
    );
  }
  console.log(`\nstart-up, cold process, median of ${ROUNDS * 2} (target <= 200 ms for --help and plan):`);
  for (const st of Object.values(starts)) console.log(`  ${st.label.padEnd(56)} ${median(st.ms).toFixed(0).padStart(5)} ms`);
  const summary = Object.fromEntries(Object.keys(ways).map((k) => [k, { wall: med(k, 's'), cpu: med(k, 'cpu'), rssMb: med(k, 'rssMb') }]));
  console.log(
    JSON.stringify({
      hosts: HOSTS,
      rounds: ROUNDS,
      median: summary,
      chops_vs_floor: { wall: med('chops', 's') / fl.s, cpu: med('chops', 'cpu') / fl.cpu },
      startup_ms: Object.fromEntries(Object.entries(starts).map(([k, st]) => [k, median(st.ms)])),
    }),
  );
} finally {
  await lab.down();
}
