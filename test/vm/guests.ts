// guests.ts - start throw-away QEMU guests for the VM test tier and describe them to chops.
//
//   const lab = await startGuests({ name: 'facts', count: 2 });
//   try { ... node bin/chops.js run facts -i lab.inventoryPath ... }
//   finally { await lab.stop(); }
//
// Each guest is restored from the booted state image.sh saved (3-5 s instead of a ~30 s cold
// boot under TCG) on fresh copy-on-write overlays: root (/dev/vda) over the cached image, an
// empty 4 GiB /dev/vdb (serial chops-data, /dev/disk/by-id/virtio-chops-data) and optional
// extra empty disks hot-plugged as /dev/vdc, /dev/vdd, ... (serial chops-extraN). After the
// restore the guest's clock, hostname and RNG are fixed (clones share the snapshot's).
// Guests listen on 127.0.0.1:<random port> (ssh, root or `ops` with passwordless sudo), key
// lab.identityFile, strict host key checking against lab.knownHosts (one pinned ed25519 key).
//
// Safety: every QEMU runs under `setpriv --pdeathsig KILL`, so it dies with this process even on
// SIGKILL; stop() and the process 'exit' hook only signal PIDs whose /proc/PID/cmdline carries
// this guest's unique QMP socket path. Guest disks are files under lab.dir, never host devices.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type Accel,
  DATA_DISK_SIZE,
  HOTPLUG_PORTS,
  Qmp,
  type RunResult,
  type SshTarget,
  consoleTail,
  freePort,
  isOurQemu,
  pidAlive,
  qemuArgs,
  sleep,
  spawnQemu,
  sshRun,
} from './machine.js';

const execFileP = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface ImageInfo {
  dir: string;
  accel: Accel;
  memMiB: number;
  kernel: string;
  initrd: string;
  identityFile: string;
  hostKeyFile: string;
  state: string;
  root: string;
}

export interface Guest {
  /** Inventory host name and the guest's hostname, e.g. "facts-1". */
  name: string;
  index: number;
  address: '127.0.0.1';
  /** 127.0.0.1 port forwarded to the guest's sshd. */
  port: number;
  /** PID of this guest's QEMU. */
  pid: number;
  /** Directory with its overlays, console.log, qmp.sock, qemu.pid. */
  dir: string;
  consoleLog: string;
  /** The empty second disk: always /dev/vdb. */
  dataDisk: string;
  /** Extra empty disks in order: /dev/vdc, /dev/vdd, ... */
  extraDisks: string[];
}

export interface StartOptions {
  /** Lab name: prefix of the guest names (`<name>-1`...) and of the run directory. */
  name: string;
  count: number;
  /** Extra empty disks per guest besides /dev/vdb (0..4), hot-plugged as vdc, vdd, ... */
  extraDisks?: number;
  /** Size of each extra disk (qemu-img size, default 4G). */
  extraDiskSize?: string;
  /** Guest RAM; each size gets its own saved state, built once on first use (~30 s). Default 1024. */
  memMiB?: number;
  /** Inventory layout: one shard per guest (default) or one shard with every guest a replica. */
  layout?: 'shards' | 'replicas';
  /** Login user written into the inventory: root (default) or ops (with `sudo: true`). */
  user?: 'root' | 'ops';
  /** Parent of the lab directory (default $CHOPS_VM_RUN_DIR or <tmpdir>/chops-vm). */
  runDir?: string;
}

export interface SshOptions {
  timeoutMs?: number;
  input?: string;
  user?: 'root' | 'ops';
}

export interface Lab {
  name: string;
  dir: string;
  inventoryPath: string;
  identityFile: string;
  knownHosts: string;
  image: ImageInfo;
  guests: Guest[];
  /** Seconds from the call to every guest answering ssh (includes image.sh's cache check). */
  startSeconds: number;
  /** Stop every QEMU this lab started (only those PIDs) and delete the disk overlays. Idempotent. */
  stop(): Promise<void>;
  /** Run a command over a fresh ssh connection (strict host key checking). Never throws. */
  ssh(guest: Guest, cmd: string, opts?: SshOptions): Promise<RunResult>;
  /** Wait until ssh answers with a boot id different from previousBootId; returns the new boot id. */
  waitSsh(guest: Guest, opts?: WaitSshOptions): Promise<string>;
  bootId(guest: Guest): Promise<string>;
  /** Reboot the guest and wait for the new boot; returns both boot ids and the seconds it took. */
  reboot(guest: Guest, opts?: { timeoutMs?: number }): Promise<{ before: string; after: string; seconds: number }>;
  /**
   * Make the guest's next reboot never come back: 'poweroff' = QEMU exits (connections are
   * refused), 'hang' = the machine freezes (TCP connects, the ssh banner never comes).
   */
  failNextReboot(guest: Guest, mode: 'poweroff' | 'hang'): Promise<void>;
  /** SIGKILL this guest's QEMU (a crashed/unplugged machine). */
  kill(guest: Guest): Promise<void>;
  /**
   * Power cut and power on, no shutdown (QMP system_reset): what the guest had not written to its
   * virtual disks (page cache, unflushed journal) is lost, the machine cold-boots from its disks.
   * Hot-plugged devices stay. Wait for the new boot with waitSsh (read bootId before the cut).
   */
  powerCycle(guest: Guest): Promise<void>;
  /**
   * Hot-plug a virtio NIC (into the last free PCIe port) whose host side is a tap IFNAME attached
   * to BRIDGE, e.g. the bridge of an nspawn ClickHouse lab (test/lab/lab.sh). QEMU creates the tap
   * and it vanishes with QEMU; the guest names the NIC eth1. Configure its address in the guest.
   */
  attachToBridge(guest: Guest, opts: { bridge: string; ifname: string; mac: string }): Promise<void>;
  /** True while the guest's QEMU runs. */
  alive(guest: Guest): boolean;
  /** Render an inventory for some or all guests; returns its path. */
  writeInventory(file: string, opts?: { guests?: Guest[]; layout?: 'shards' | 'replicas'; user?: 'root' | 'ops' }): string;
}

export interface WaitSshOptions {
  previousBootId?: string;
  timeoutMs?: number;
}

// ---- image ---------------------------------------------------------------------------------
const images = new Map<number, Promise<ImageInfo>>();

/** Make sure the image and the saved state for this memory size exist (builds them if missing). */
export function ensureImage(memMiB = 1024): Promise<ImageInfo> {
  let p = images.get(memMiB);
  if (!p) {
    p = new Promise<ImageInfo>((resolve, reject) => {
      const child = spawn('bash', [path.join(HERE, 'image.sh'), '--mem', String(memMiB)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '',
        err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      // progress of a (cold) build goes to our stderr; a warm cache check prints nothing
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        process.stderr.write(d);
      });
      child.on('close', (code) => {
        const line = out.trim().split('\n').pop() ?? '';
        if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line));
        else reject(new Error(`test/vm/image.sh failed (exit ${code}):\n${err.slice(-3000)}`));
      });
    });
    images.set(memMiB, p);
    p.catch(() => images.delete(memMiB));
  }
  return p;
}

// ---- bookkeeping for cleanup -----------------------------------------------------------------
interface GuestState {
  guest: Guest;
  qmpSocket: string;
  qmp?: Qmp;
  target: SshTarget;
  labDir: string;
  /** Host-side tap of attachToBridge (deleted after QEMU exits, if QEMU left it). */
  tap?: string;
}
const states = new WeakMap<Guest, GuestState>();
const running = new Set<GuestState>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test forgot stop() or threw before it: synchronous, our PIDs only.
  process.on('exit', () => {
    for (const s of running) {
      if (isOurQemu(s.guest.pid, s.qmpSocket)) {
        try {
          process.kill(s.guest.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  });
}

function sanitize(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return s || 'vm';
}

// ---- one guest -------------------------------------------------------------------------------
async function startGuest(image: ImageInfo, labDir: string, name: string, index: number, identityFile: string, knownHosts: string): Promise<GuestState> {
  const dir = path.join(labDir, name);
  mkdirSync(dir, { recursive: true });
  const rootDisk = path.join(dir, 'root.qcow2');
  const dataDisk = path.join(dir, 'data.qcow2');
  await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image.root, rootDisk]);
  await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', dataDisk, DATA_DISK_SIZE]);
  const qmpSocket = path.join(dir, 'qmp.sock');
  const consoleLog = path.join(dir, 'console.log');
  let lastErr = '';
  for (let attempt = 1; attempt <= 4; attempt++) {
    rmSync(qmpSocket, { force: true });
    const port = await freePort();
    const { child, stderr } = spawnQemu(
      qemuArgs({
        tag: `${name}:${dir}`,
        accel: image.accel,
        memMiB: image.memMiB,
        kernel: image.kernel,
        initrd: image.initrd,
        rootDisk,
        dataDisk,
        sshPort: port,
        qmpSocket,
        consoleLog,
        incoming: `exec:zstd -dc ${image.state}`,
      }),
    );
    const pid = child.pid!;
    writeFileSync(path.join(dir, 'qemu.pid'), `${pid}\n`);
    const guest: Guest = { name, index, address: '127.0.0.1', port, pid, dir, consoleLog, dataDisk: '/dev/vdb', extraDisks: [] };
    const state: GuestState = { guest, qmpSocket, target: { port, identityFile, knownHosts }, labDir };
    running.add(state);
    states.set(guest, state);
    const alive = () => child.exitCode === null && child.signalCode === null && pidAlive(pid);
    try {
      state.qmp = await Qmp.connect(qmpSocket, 30000, alive);
      // wait for the incoming migration (the saved state) to finish; resume if it stopped paused
      for (let i = 0; ; i++) {
        const st = await state.qmp.execute<{ status: string }>('query-status');
        if (st.status === 'running') break;
        if (st.status === 'paused' || st.status === 'postmigrate' || st.status === 'prelaunch') {
          await state.qmp.execute('cont');
          break;
        }
        if (!alive()) throw new Error('QEMU exited while restoring');
        if (i > 1200) throw new Error(`restore did not finish (status ${st.status})`);
        await sleep(50);
      }
      return state;
    } catch (e) {
      await sleep(100);
      lastErr = `${(e as Error).message}\n${stderr()}`;
      running.delete(state);
      state.qmp?.close();
      if (isOurQemu(pid, qmpSocket)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      if (!/host forwarding|Address already in use|QMP socket/.test(lastErr)) break; // only a port clash is worth a retry
    }
  }
  throw new Error(`guest ${name}: QEMU failed to start: ${lastErr}\n${consoleTail(consoleLog)}`);
}

/** After a restore: plug extra disks, then fix clock, hostname and RNG (clones share the snapshot's). */
async function prepareGuest(s: GuestState, extraDisks: number, extraDiskSize: string, timeoutMs: number): Promise<void> {
  const g = s.guest;
  await waitSshState(s, { timeoutMs });
  for (let j = 1; j <= extraDisks; j++) {
    const file = path.join(g.dir, `extra${j}.qcow2`);
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', file, extraDiskSize]);
    await s.qmp!.execute('blockdev-add', {
      driver: 'qcow2',
      'node-name': `extra${j}`,
      discard: 'unmap',
      cache: { 'no-flush': true },
      file: { driver: 'file', filename: file },
    });
    await s.qmp!.execute('device_add', { driver: 'virtio-blk-pci', id: `extra${j}-dev`, drive: `extra${j}`, serial: `chops-extra${j}`, bus: `hp${j}` });
    // one at a time, so the kernel names them vdc, vdd, ... in order (the same order a reboot gives)
    const r = await sshRun(
      s.target,
      `for i in $(seq 300); do [ -b /dev/disk/by-id/virtio-chops-extra${j} ] && exec readlink -f /dev/disk/by-id/virtio-chops-extra${j}; sleep 0.1; done; exit 1`,
      { timeoutMs: 60000 },
    );
    if (r.code !== 0) throw new Error(`guest ${g.name}: hot-plugged disk chops-extra${j} did not appear: ${r.stderr}`);
    g.extraDisks.push(r.stdout.trim());
  }
  const now = Date.now() / 1000;
  const fix = [
    `date -s @${now.toFixed(3)} >/dev/null`,
    `hostname ${g.name}`,
    `echo ${g.name} > /etc/hostname`,
    `sed -i 's/^127\\.0\\.1\\.1 .*/127.0.1.1 ${g.name}/' /etc/hosts`,
    `echo ${randomBytes(64).toString('hex')} > /dev/urandom`,
  ].join('; ');
  const r = await sshRun(s.target, fix, { timeoutMs: 30000 });
  if (r.code !== 0) throw new Error(`guest ${g.name}: post-restore fix failed (${r.code}): ${r.stderr}`);
}

async function waitSshState(s: GuestState, opts: WaitSshOptions = {}): Promise<string> {
  const g = s.guest;
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const t0 = Date.now();
  let last = '';
  for (;;) {
    if (!isOurQemu(g.pid, s.qmpSocket)) throw new Error(`guest ${g.name}: QEMU (pid ${g.pid}) is not running; console:\n${consoleTail(g.consoleLog)}`);
    const r = await sshRun(s.target, 'cat /proc/sys/kernel/random/boot_id', { timeoutMs: 15000, extra: ['-o', 'ConnectTimeout=3'] });
    const id = r.stdout.trim();
    if (r.code === 0 && id && id !== opts.previousBootId) return id;
    last = r.code === 0 ? `still the previous boot ${id}` : r.stderr.trim() || `ssh exit ${r.code}`;
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`guest ${g.name}: no ssh with a new boot after ${Math.round(timeoutMs / 1000)}s (last: ${last}); console:\n${consoleTail(g.consoleLog)}`);
    }
    await sleep(500);
  }
}

function stateOf(g: Guest): GuestState {
  const s = states.get(g);
  if (!s) throw new Error(`${g.name} is not a guest started by startGuests()`);
  return s;
}

/** Wait until ssh answers with a boot id different from previousBootId; returns the new boot id. */
export function waitSsh(guest: Guest, opts: WaitSshOptions = {}): Promise<string> {
  return waitSshState(stateOf(guest), opts);
}

/** Run a command on a guest over a fresh ssh connection. */
export function ssh(guest: Guest, cmd: string, opts: SshOptions = {}): Promise<RunResult> {
  const s = stateOf(guest);
  return sshRun({ ...s.target, user: opts.user ?? 'root' }, cmd, opts);
}

async function stopGuest(s: GuestState): Promise<void> {
  const { guest: g } = s;
  if (isOurQemu(g.pid, s.qmpSocket)) {
    try {
      await Promise.race([s.qmp?.execute('quit'), sleep(2000)]);
    } catch {
      /* fall through to signals */
    }
    for (let i = 0; i < 20 && isOurQemu(g.pid, s.qmpSocket); i++) await sleep(100);
    if (isOurQemu(g.pid, s.qmpSocket)) {
      try {
        process.kill(g.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    for (let i = 0; i < 30 && isOurQemu(g.pid, s.qmpSocket); i++) await sleep(100);
    if (isOurQemu(g.pid, s.qmpSocket)) {
      try {
        process.kill(g.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  s.qmp?.close();
  running.delete(s);
  if (s.tap) await execFileP('ip', ['link', 'del', s.tap]).catch(() => {}); // QEMU removes its tap; only a leftover is deleted
  // disks go, console.log and the lab files stay for post-mortems
  for (const f of ['root.qcow2', 'data.qcow2', ...Array.from({ length: HOTPLUG_PORTS }, (_, i) => `extra${i + 1}.qcow2`), 'qmp.sock']) {
    rmSync(path.join(g.dir, f), { force: true });
  }
}

// ---- inventory -------------------------------------------------------------------------------
function renderInventory(
  lab: { dir: string; identityFile: string; knownHosts: string },
  guests: Guest[],
  layout: 'shards' | 'replicas',
  user: 'root' | 'ops',
): string {
  const q = (s: string) => JSON.stringify(s);
  const replica = (g: Guest, indent: string) => `${indent}- host: ${g.name}\n${indent}  address: ${g.address}\n${indent}  ssh: {port: ${g.port}}\n`;
  let shards = '';
  if (layout === 'replicas') {
    shards = `      - name: "01"\n        replicas:\n${guests.map((g) => replica(g, '          ')).join('')}`;
  } else {
    shards = guests.map((g, i) => `      - name: "${String(i + 1).padStart(2, '0')}"\n        replicas:\n${replica(g, '          ')}`).join('');
  }
  return `# Generated by test/vm/guests.ts for the QEMU guests in ${lab.dir}
version: 1

defaults:
  ssh:
    user: ${user}
    port: 22
    identity_file: ${q(lab.identityFile)}
    known_hosts: ${q(lab.knownHosts)}
    connect_timeout: 10s${user === 'ops' ? '\n    sudo: true' : ''}
  vars:
    data_disk: /dev/vdb

state:
  dir: ${q(path.join(lab.dir, 'state'))}

clusters:
  vm:
    shards:
${shards}`;
}

// ---- the lab ---------------------------------------------------------------------------------
export async function startGuests(opts: StartOptions): Promise<Lab> {
  const t0 = Date.now();
  const count = opts.count;
  const extraDisks = opts.extraDisks ?? 0;
  if (!(count >= 1 && count <= 16)) throw new Error('startGuests: count must be 1..16');
  if (!(extraDisks >= 0 && extraDisks <= HOTPLUG_PORTS)) throw new Error(`startGuests: extraDisks must be 0..${HOTPLUG_PORTS}`);
  const image = await ensureImage(opts.memMiB ?? 1024);
  installExitHook();
  const prefix = sanitize(opts.name);
  const parent = opts.runDir ?? process.env.CHOPS_VM_RUN_DIR ?? path.join(os.tmpdir(), 'chops-vm');
  const dir = path.join(parent, `${prefix}-${Date.now().toString(36)}-${process.pid}`);
  mkdirSync(path.join(dir, 'state'), { recursive: true });
  const knownHosts = path.join(dir, 'known_hosts');
  const hostKey = readFileSync(image.hostKeyFile, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const identityFile = image.identityFile;
  writeFileSync(knownHosts, '');

  const names = Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
  const started: GuestState[] = [];
  const stopAll = async () => {
    await Promise.all(started.map(stopGuest));
  };
  try {
    // QEMU processes in parallel; each restore is mostly decompression + page-in
    const results = await Promise.allSettled(names.map((n, i) => startGuest(image, dir, n, i + 1, identityFile, knownHosts)));
    for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
    writeFileSync(knownHosts, started.map((s) => `[127.0.0.1]:${s.guest.port} ${hostKey}\n`).join(''));
    const bootTimeout = image.accel === 'kvm' ? 120_000 : 300_000;
    await Promise.all(started.map((s) => prepareGuest(s, extraDisks, opts.extraDiskSize ?? '4G', bootTimeout)));
  } catch (e) {
    await stopAll();
    throw e;
  }
  const guests = started.map((s) => s.guest);
  const lab: Lab = {
    name: prefix,
    dir,
    inventoryPath: path.join(dir, 'inventory.yml'),
    identityFile,
    knownHosts,
    image,
    guests,
    startSeconds: (Date.now() - t0) / 1000,
    async stop() {
      await stopAll();
    },
    ssh,
    waitSsh,
    async bootId(g) {
      const r = await ssh(g, 'cat /proc/sys/kernel/random/boot_id', { timeoutMs: 30000 });
      if (r.code !== 0) throw new Error(`guest ${g.name}: cannot read boot_id (${r.code}): ${r.stderr}`);
      return r.stdout.trim();
    },
    async reboot(g, o = {}) {
      const before = await lab.bootId(g);
      const t = Date.now();
      await ssh(g, 'systemctl reboot', { timeoutMs: 30000 }); // the connection may drop: ignore the code
      const after = await waitSsh(g, { previousBootId: before, timeoutMs: o.timeoutMs ?? 300_000 });
      return { before, after, seconds: (Date.now() - t) / 1000 };
    },
    async failNextReboot(g, mode) {
      const s = stateOf(g);
      await s.qmp!.execute('set-action', { reboot: 'shutdown', shutdown: mode === 'poweroff' ? 'poweroff' : 'pause' });
    },
    async kill(g) {
      const s = stateOf(g);
      if (isOurQemu(g.pid, s.qmpSocket)) process.kill(g.pid, 'SIGKILL');
      for (let i = 0; i < 50 && isOurQemu(g.pid, s.qmpSocket); i++) await sleep(100);
    },
    async powerCycle(g) {
      const s = stateOf(g);
      await s.qmp!.execute('system_reset');
    },
    async attachToBridge(g, o) {
      const s = stateOf(g);
      if (!/^[a-z0-9]{1,15}$/.test(o.ifname)) throw new Error(`attachToBridge: bad interface name ${o.ifname}`);
      if (extraDisks >= HOTPLUG_PORTS) throw new Error('attachToBridge: every hot-plug port holds an extra disk');
      await s.qmp!.execute('netdev_add', { type: 'tap', id: 'labnet', ifname: o.ifname, script: 'no', downscript: 'no' });
      s.tap = o.ifname;
      await execFileP('ip', ['link', 'set', o.ifname, 'master', o.bridge, 'up']);
      await s.qmp!.execute('device_add', { driver: 'virtio-net-pci', id: 'labnet-dev', netdev: 'labnet', mac: o.mac, bus: `hp${HOTPLUG_PORTS}` });
      const r = await sshRun(
        s.target,
        `for i in $(seq 300); do grep -qix ${o.mac} /sys/class/net/eth1/address 2>/dev/null && exit 0; sleep 0.1; done; ip -br link >&2; exit 1`,
        { timeoutMs: 60000 },
      );
      if (r.code !== 0) throw new Error(`guest ${g.name}: the hot-plugged NIC did not appear as eth1: ${r.stderr}`);
    },
    alive(g) {
      return isOurQemu(g.pid, stateOf(g).qmpSocket);
    },
    writeInventory(file, o = {}) {
      writeFileSync(file, renderInventory(lab, o.guests ?? guests, o.layout ?? opts.layout ?? 'shards', o.user ?? opts.user ?? 'root'));
      return file;
    },
  };
  lab.writeInventory(lab.inventoryPath);
  lab.startSeconds = (Date.now() - t0) / 1000;
  return lab;
}
