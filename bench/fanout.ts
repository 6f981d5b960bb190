// bench:fanout — the 10-command workload of performance-anchors.md on 20 lab hosts, through
// `chops run exec`, raw ssh2 (the floor) and Ansible (pipelining + ControlPersist), measured
// side by side, round-robin, in one run; plus cold start-up of `chops --help` and `chops plan`.
// Prints medians and ratios. Not a test: the 2 shared cores are noisy, so only ratios count.
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labUp } from '../test/lab/lab.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOSTS = Number(process.env.BENCH_HOSTS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CMDS = ['true', 'uname -a', 'cat /etc/hostname', 'date +%s', 'id -u', 'cat /proc/uptime', 'cat /proc/loadavg', 'echo hello', 'ls /etc/ssh', 'whoami'];

function timeIt(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { s: number; cpu: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout.slice(-2000)}`);
  return { s, cpu: 0 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function ensureAnsible(): boolean {
  if (spawnSync('sh', ['-c', 'command -v ansible-playbook']).status === 0) return true;
  console.error('installing Debian ansible (apt-get)...');
  return spawnSync('sh', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends ansible >/dev/null'], { stdio: 'inherit' }).status === 0;
}

const lab = await labUp({ name: 'fanout', hosts: HOSTS });
try {
  const dir = join(lab.dir, 'bench');
  mkdirSync(dir, { recursive: true });
  const hostsFile = join(dir, 'hosts.json');
  writeFileSync(hostsFile, JSON.stringify(lab.hosts.map((h) => ({ address: h.address, port: h.port }))));
  // Ansible inventory + playbook: the same 10 commands with the command module, one play over all hosts.
  const ini = ['[lab]', ...lab.hosts.map((h) => `${h.name} ansible_host=${h.address} ansible_port=${h.port}`), '',
    '[lab:vars]', 'ansible_user=root', `ansible_ssh_private_key_file=${lab.identityFile}`, 'ansible_python_interpreter=/usr/bin/python3',
    `ansible_ssh_common_args=-o UserKnownHostsFile=${lab.knownHosts} -o StrictHostKeyChecking=yes`].join('\n');
  writeFileSync(join(dir, 'hosts.ini'), ini + '\n');
  writeFileSync(join(dir, 'play.yml'), `- hosts: lab\n  gather_facts: false\n  tasks:\n${CMDS.map((c) => `    - command: ${JSON.stringify(c)}\n`).join('')}`);
  writeFileSync(join(dir, 'ansible.cfg'), `[defaults]\nforks = ${HOSTS}\nhost_key_checking = True\nstdout_callback = minimal\n[ssh_connection]\npipelining = True\nssh_args = -o ControlMaster=auto -o ControlPersist=60s\ncontrol_path = ${dir}/cp-%%h-%%p\n`);
  const haveAnsible = ensureAnsible() && spawnSync('sh', ['-c', `ssh -o BatchMode=yes -i ${lab.identityFile} -o UserKnownHostsFile=${lab.knownHosts} root@${lab.hosts[0].address} command -v python3`]).status === 0;
  if (!haveAnsible) console.error('Ansible column skipped: ansible or python3 on the lab hosts is missing');

  const chopsArgs = ['bin/chops.js', 'run', 'exec', '-i', lab.inventoryPath, '--output', 'plain', ...CMDS.flatMap((c) => ['--cmd', c])];
  // tsx costs start-up time; compile the floor once so both sides are plain node processes
  // (inside the repo, so `ssh2` resolves from its node_modules like chops' own bundle).
  const rawJs = join(ROOT, 'dist/bench/raw-ssh2.mjs');
  execFileSync(join(ROOT, 'node_modules/.bin/esbuild'), ['bench/raw-ssh2.ts', '--bundle', '--platform=node', '--format=esm', `--outfile=${rawJs}`, '--external:ssh2', '--log-level=error'], { cwd: ROOT });
  const rawRun = () => timeIt(process.execPath, [rawJs, hostsFile, lab.identityFile, JSON.stringify(CMDS)]);

  const t: Record<string, number[]> = { chops: [], raw: [], ansible: [] };
  // warm-up (page cache, sshd first-connection costs)
  timeIt(process.execPath, chopsArgs);
  for (let i = 0; i < ROUNDS; i++) {
    t.chops.push(timeIt(process.execPath, chopsArgs).s);
    t.raw.push(rawRun().s);
    if (haveAnsible) t.ansible.push(timeIt('ansible-playbook', ['-i', join(dir, 'hosts.ini'), join(dir, 'play.yml')], { ANSIBLE_CONFIG: join(dir, 'ansible.cfg') }).s);
    console.error(`round ${i + 1}/${ROUNDS}: chops ${t.chops.at(-1)!.toFixed(2)}s raw ${t.raw.at(-1)!.toFixed(2)}s${haveAnsible ? ` ansible ${t.ansible.at(-1)!.toFixed(2)}s` : ''}`);
  }

  // cold start-up: --help and plan on a 4-host inventory (first run after dropping nothing: the
  // page cache is warm, as on an operator's machine; node itself dominates)
  const help: number[] = [];
  const plan: number[] = [];
  const bare: number[] = [];
  const plan4 = join(dir, 'inventory-4.yml');
  // a 4-host slice of the lab: plan connects and probes for real
  execFileSync(process.execPath, ['-e', `
    const Y=require(${JSON.stringify(join(ROOT, 'node_modules/yaml'))});const fs=require('fs');
    const d=Y.parse(fs.readFileSync(${JSON.stringify(lab.inventoryPath)},'utf8'));
    const c=Object.values(d.clusters)[0]; c.shards=c.shards.slice(0,2);
    fs.writeFileSync(${JSON.stringify(plan4)}, Y.stringify(d));`]);
  for (let i = 0; i < ROUNDS * 2; i++) {
    bare.push(timeIt(process.execPath, ['-e', '0']).s);
    help.push(timeIt(process.execPath, ['bin/chops.js', '--help']).s);
    plan.push(timeIt(process.execPath, ['bin/chops.js', 'plan', 'exec', '-i', plan4, '--cmd', 'true']).s);
  }

  const m = { chops: median(t.chops), raw: median(t.raw), ansible: haveAnsible ? median(t.ansible) : NaN };
  const row = (name: string, s: number, note = '') => console.log(`| ${name.padEnd(44)} | ${s.toFixed(3).padStart(8)} | ${note}`);
  console.log(`\nfan-out: ${HOSTS} hosts x ${CMDS.length} commands, median of ${ROUNDS} rounds (wall seconds, whole process incl. node start-up)`);
  console.log(`| ${'way'.padEnd(44)} | ${'median s'.padStart(8)} | ratio`);
  row('raw ssh2 (floor: 1 conn/host, TCP_NODELAY)', m.raw, '1.00x');
  row('chops run exec (listr2, state, log)', m.chops, `${(m.chops / m.raw).toFixed(2)}x raw ssh2 (target <= 1.3x)`);
  if (haveAnsible) row('ansible-playbook (pipelining, ControlPersist)', m.ansible, `${(m.ansible / m.chops).toFixed(1)}x slower than chops (target >= 25x)`);
  console.log(`\nstart-up (median of ${help.length}): bare node ${(median(bare) * 1000).toFixed(0)} ms, chops --help ${(median(help) * 1000).toFixed(0)} ms (target <= 200), chops plan exec on 4 hosts ${(median(plan) * 1000).toFixed(0)} ms (target <= 200; includes 4 SSH connections)`);
  console.log(JSON.stringify({ hosts: HOSTS, rounds: ROUNDS, median_s: m, ratio_chops_raw: m.chops / m.raw, ratio_ansible_chops: m.ansible / m.chops, help_ms: median(help) * 1000, plan_ms: median(plan) * 1000, bare_node_ms: median(bare) * 1000 }));
} finally {
  await lab.down();
}
