// machine.ts - the one definition of the QEMU guest hardware, plus the small process/QMP/ssh
// helpers the snapshot builder (vmctl.ts, called by image.sh) and the test API (guests.ts) share.
//
// A saved machine state can only be restored into identical hardware, so every QEMU command
// line of the VM tier is built by qemuArgs() below. This file is part of the image cache key
// (image.sh hashes it): changing the hardware here rebuilds the snapshot automatically.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';

export type Accel = 'kvm' | 'tcg';

/** Empty PCIe root ports present in every guest: extra disks are hot-plugged into them. */
export const HOTPLUG_PORTS = 4;
/** Size of the empty second disk every guest has (/dev/vdb, serial chops-data). */
export const DATA_DISK_SIZE = '4G';
/** Kernel command line (root fs without partition table on virtio disk 0). */
export const KERNEL_APPEND = 'root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet mitigations=off';

export interface MachineOptions {
  /** Unique marker put on the command line (`-name`), checked before signalling a PID. */
  tag: string;
  accel: Accel;
  memMiB: number;
  kernel: string;
  initrd: string;
  rootDisk: string;
  dataDisk: string;
  /** 127.0.0.1 port forwarded to the guest's port 22. */
  sshPort: number;
  qmpSocket: string;
  consoleLog: string;
  /** `exec:zstd -dc FILE` to restore a saved state. */
  incoming?: string;
}

export function accelArgs(accel: Accel): string[] {
  // `-cpu host` aborts on the paravirtual KVM of these machines; TCG: tb-size 256 MiB keeps the
  // RSS ~400 MB lower than QEMU's 1 GiB default at no measurable speed cost.
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host,-arch-capabilities'] : ['-accel', 'tcg,thread=multi,tb-size=256', '-cpu', 'max'];
}

export function qemuArgs(o: MachineOptions): string[] {
  const args = [
    '-name',
    `chops-vm:${o.tag}`,
    ...accelArgs(o.accel),
    '-machine',
    'q35',
    '-smp',
    '1',
    '-m',
    String(o.memMiB),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-serial',
    `file:${o.consoleLog}`,
    '-qmp',
    `unix:${o.qmpSocket},server=on,wait=off`,
    '-kernel',
    o.kernel,
    '-initrd',
    o.initrd,
    '-append',
    KERNEL_APPEND,
    '-drive',
    `if=none,id=root,file=${o.rootDisk},format=qcow2,cache=unsafe,discard=unmap`,
    '-device',
    'virtio-blk-pci,drive=root,serial=chops-root,addr=0x4',
    '-drive',
    `if=none,id=data,file=${o.dataDisk},format=qcow2,cache=unsafe,discard=unmap`,
    '-device',
    'virtio-blk-pci,drive=data,serial=chops-data,addr=0x5',
    // slirp: the guest is 10.0.2.15 and can reach nothing but its forwarded ssh port
    '-netdev',
    `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${o.sshPort}-:22`,
    '-device',
    'virtio-net-pci,netdev=n0,addr=0x3',
    '-device',
    'virtio-rng-pci,addr=0x6',
  ];
  for (let i = 1; i <= HOTPLUG_PORTS; i++) {
    args.push('-device', `pcie-root-port,id=hp${i},chassis=${i},slot=${i},addr=0x1${i - 1}`);
  }
  if (o.incoming) args.push('-incoming', o.incoming);
  return args;
}

/**
 * Start QEMU in the foreground of a child that dies with us: `setpriv --pdeathsig KILL` makes
 * the kernel SIGKILL the guest if this Node process dies in any way (even SIGKILL), so a
 * crashed test run never leaves guests behind. stderr is collected for error messages.
 */
export function spawnQemu(args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    if (err.length < 20000) err += d;
  });
  child.unref();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  return { child, stderr: () => err };
}

/** True when `pid` is alive and its command line carries our marker. */
export function isOurQemu(pid: number | undefined, marker: string): boolean {
  if (!pid) return false;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('qemu-system') && cmd.includes(marker);
  } catch {
    return false;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1 (QEMU binds it a moment later; callers retry on a clash). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Minimal QMP client (one JSON object per line). */
export class Qmp {
  private buf = '';
  private waiters: Array<(r: { return?: unknown; error?: { class: string; desc: string } }) => void> = [];
  readonly events: Array<{ event: string; data?: unknown }> = [];
  private constructor(private sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if ('event' in msg) this.events.push(msg);
        else if ('QMP' in msg) continue;
        else this.waiters.shift()?.(msg);
      }
    });
    sock.on('close', () => {
      for (const w of this.waiters.splice(0)) w({ error: { class: 'Closed', desc: 'QMP connection closed' } });
    });
    sock.on('error', () => {
      /* reported through close */
    });
  }

  /** Connect, retrying while QEMU has not created the socket yet (up to timeoutMs). */
  static async connect(path: string, timeoutMs = 30000, alive?: () => boolean): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (existsSync(path)) {
        try {
          const sock = await new Promise<net.Socket>((res, rej) => {
            const s = net.connect(path, () => res(s));
            s.once('error', rej);
          });
          const q = new Qmp(sock);
          await q.execute('qmp_capabilities');
          return q;
        } catch {
          /* not listening yet */
        }
      }
      if (alive && !alive()) throw new Error(`QEMU exited before its QMP socket ${path} answered`);
      if (Date.now() > deadline) throw new Error(`QMP socket ${path} did not answer within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    return new Promise((resolve, reject) => {
      this.waiters.push((r) => (r.error ? reject(new Error(`QMP ${command}: ${r.error.desc}`)) : resolve(r.return as T)));
      this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface SshTarget {
  port: number;
  identityFile: string;
  knownHosts: string;
  user?: string;
}

/** OpenSSH client options: strict host key checking against our own known_hosts only. */
export function sshArgs(t: SshTarget, extra: string[] = []): string[] {
  return [
    '-F',
    '/dev/null',
    '-p',
    String(t.port),
    '-i',
    t.identityFile,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${t.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'HostKeyAlgorithms=ssh-ed25519',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'ServerAliveInterval=5',
    '-o',
    'ServerAliveCountMax=3',
    '-o',
    'LogLevel=ERROR',
    ...extra,
    `${t.user ?? 'root'}@127.0.0.1`,
  ];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Run `ssh ... cmd` (a fresh connection each time: a reboot can never fool it). */
export function sshRun(t: SshTarget, cmd: string, opts: { timeoutMs?: number; input?: string; extra?: string[] } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn('ssh', [...sshArgs(t, opts.extra), cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ stdout, stderr, code: code ?? (signal ? 124 : 255) });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Last lines of a guest's serial console, for error messages. */
export function consoleTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no console log)';
  }
}
