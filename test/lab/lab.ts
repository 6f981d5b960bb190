// TypeScript front end of test/lab/lab.sh, for tests and benchmarks.
//
//   const lab = await labUp({ name: 'ssh1', hosts: 3, net: '127.0.41' });
//   try { ... chops -i lab.inventoryPath ...; await labExec(lab, 'h1', 'systemctl stop cron'); }
//   finally { await lab.down(); }
//
// Every lab host is a systemd-nspawn container (real systemd, sshd, cron; ClickHouse labs also
// the Debian clickhouse-server 18.16 as a systemd unit). Needs root. See lab.sh for the layout.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LAB_SH = fileURLToPath(new URL('./lab.sh', import.meta.url));

export interface LabHost {
  /** Inventory host name: h1..hN, or ch1..ch4 in ClickHouse labs. */
  name: string;
  /** Address sshd (and ClickHouse) listen on: NET.(10+i). */
  address: string;
  /** SSH port (always 22). */
  port: number;
  /** `ssh-ed25519 AAAA...` (the container's own host key). */
  hostKey: string;
  /** The host's line in known_hosts: `ADDRESS ssh-ed25519 AAAA...`. */
  hostKeyLine: string;
  /** Shard name as in the inventory / {shard} macro ("01", ...). */
  shard: string;
  /** Replica name ({replica} macro) = host name. */
  replica: string;
}

export interface Lab {
  name: string;
  /** Lab directory, e.g. /var/tmp/chops-lab/NAME. */
  dir: string;
  /** chops inventory of the lab (cluster "lab"). */
  inventoryPath: string;
  /** Lab client private key (root and ops accept it). */
  identityFile: string;
  /** Strict known_hosts, one line per host. */
  knownHosts: string;
  /** OpenSSH client config with `Host h1..` entries (ssh -F). */
  sshConfig: string;
  /** Address prefix (3 octets). */
  net: string;
  /** 'loopback' (host network namespace, 127.x) or 'bridge' (own netns per host). */
  mode: 'loopback' | 'bridge';
  clickhouse: boolean;
  /** ClickHouse labs: ZooKeeper address (NET.1:2181). */
  zookeeper?: { address: string; port: number };
  /** ClickHouse labs: the `ops` ClickHouse user (default has no password). */
  clickhouseOps?: { user: 'ops'; password: string; passwordFile: string };
  hosts: LabHost[];
  /** Tear the lab down (idempotent). */
  down(): Promise<void>;
}

export interface LabUpOptions {
  name: string;
  hosts: number;
  clickhouse?: boolean;
  /** 3-octet prefix. 127.x.y -> shared host network; anything else -> one netns per host (required for ClickHouse). */
  net?: string;
  /** Forward lab.sh progress (stderr) to this process's stderr. Default: only on failure. */
  verbose?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class LabCommandError extends Error {
  constructor(
    message: string,
    readonly result: RunResult,
  ) {
    super(message);
    this.name = 'LabCommandError';
  }
}

function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; tee?: boolean } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (opts.tee) process.stderr.write(d);
    });
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) {
      timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    }
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

function tail(s: string, lines = 40): string {
  return s.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Bring a lab up (a fresh one: an existing lab of that name is torn down first). */
export async function labUp(opts: LabUpOptions): Promise<Lab> {
  const args = ['up', '--name', opts.name, '--hosts', String(opts.hosts)];
  if (opts.clickhouse) args.push('--clickhouse');
  if (opts.net) args.push('--net', opts.net);
  const r = await run('bash', [LAB_SH, ...args], { tee: opts.verbose, timeoutMs: 15 * 60_000 });
  if (r.code !== 0) {
    // lab.sh already tore down what it had started; be sure anyway.
    await labDown(opts.name).catch(() => {});
    throw new LabCommandError(`lab.sh up ${opts.name} failed (exit ${r.code}):\n${tail(r.stderr)}`, r);
  }
  const dir = r.stdout.trim().split('\n').pop()!;
  return labOpen(opts.name, dir);
}

/** Describe an already running lab from its directory (e.g. one started by `lab.sh up`). */
export function labOpen(name: string, dir = join(process.env.CHOPS_LAB_ROOT ?? '/var/tmp/chops-lab', name)): Lab {
  const env = Object.fromEntries(
    readFileSync(join(dir, 'lab.env'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const hosts = JSON.parse(readFileSync(join(dir, 'hosts.json'), 'utf8')) as LabHost[];
  const clickhouse = env.CLICKHOUSE === '1';
  const lab: Lab = {
    name,
    dir,
    inventoryPath: join(dir, 'inventory.yml'),
    identityFile: join(dir, 'id_ed25519'),
    knownHosts: join(dir, 'known_hosts'),
    sshConfig: join(dir, 'ssh_config'),
    net: env.NET,
    mode: env.MODE === 'bridge' ? 'bridge' : 'loopback',
    clickhouse,
    hosts,
    down: () => labDown(name),
  };
  if (clickhouse) {
    lab.zookeeper = { address: `${env.NET}.1`, port: 2181 };
    const passwordFile = join(dir, 'ch_ops_password');
    lab.clickhouseOps = { user: 'ops', password: readFileSync(passwordFile, 'utf8').trim(), passwordFile };
  }
  return lab;
}

/** Stop everything of lab NAME and remove its state (idempotent). */
export async function labDown(name: string): Promise<void> {
  const r = await run('bash', [LAB_SH, 'down', '--name', name], { timeoutMs: 5 * 60_000 });
  if (r.code !== 0) throw new LabCommandError(`lab.sh down ${name} failed (exit ${r.code}):\n${tail(r.stderr)}`, r);
}

function labHost(lab: Lab, host: string): LabHost {
  const h = lab.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`lab ${lab.name} has no host ${host} (hosts: ${lab.hosts.map((x) => x.name).join(', ')})`);
  return h;
}

export interface ExecOptions {
  /** Throw LabCommandError on a non-zero exit (default true). */
  check?: boolean;
  input?: string;
  timeoutMs?: number;
}

/**
 * Run `sh -c CMD` as root inside a lab container, directly (nsenter into the container's
 * namespaces; no ssh, so it works with sshd stopped). For assertions and fault injection,
 * e.g. labExec(lab, 'ch2', 'systemctl stop clickhouse-server').
 */
export async function labExec(lab: Lab, host: string, cmd: string, opts: ExecOptions = {}): Promise<RunResult> {
  labHost(lab, host);
  const r = await run('bash', [LAB_SH, 'exec', '--name', lab.name, host, '--', cmd], { input: opts.input, timeoutMs: opts.timeoutMs ?? 120_000 });
  if ((opts.check ?? true) && r.code !== 0) {
    throw new LabCommandError(`labExec ${lab.name}/${host} \`${cmd}\` exited ${r.code}:\n${tail(r.stderr)}`, r);
  }
  return r;
}

/** Run CMD over real ssh (strict known_hosts, lab key) as `user` (default root). */
export async function labSsh(lab: Lab, host: string, cmd: string, opts: ExecOptions & { user?: string } = {}): Promise<RunResult> {
  labHost(lab, host);
  const args = ['-F', lab.sshConfig];
  if (opts.user) args.push('-l', opts.user);
  args.push(host, cmd);
  const r = await run('ssh', args, { input: opts.input, timeoutMs: opts.timeoutMs ?? 120_000 });
  if ((opts.check ?? true) && r.code !== 0) {
    throw new LabCommandError(`labSsh ${lab.name}/${host} \`${cmd}\` exited ${r.code}:\n${tail(r.stderr)}`, r);
  }
  return r;
}

/**
 * Query a ClickHouse lab node over HTTP from this machine (http://ADDRESS:8123/).
 * Returns the response body (use FORMAT TSV/JSON in the SQL). Throws on HTTP errors.
 */
export async function chQuery(
  lab: Lab,
  host: string,
  sql: string,
  opts: { user?: string; password?: string; settings?: Record<string, string | number> } = {},
): Promise<string> {
  const h = labHost(lab, host);
  const url = new URL(`http://${h.address}:8123/`);
  for (const [k, v] of Object.entries(opts.settings ?? {})) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = {};
  if (opts.user) {
    headers.authorization = 'Basic ' + Buffer.from(`${opts.user}:${opts.password ?? ''}`).toString('base64');
  }
  const res = await fetch(url, { method: 'POST', body: sql, headers, signal: AbortSignal.timeout(60_000) });
  const body = await res.text();
  if (!res.ok) throw new Error(`ClickHouse ${host} HTTP ${res.status}: ${body.trim()}`);
  return body;
}
