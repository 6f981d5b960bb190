// SSH transport: one ssh2 connection per host per run (opened lazily, reused for every command
// and port forward), TCP_NODELAY from the first byte (44 ms -> 2.3 ms per command measured),
// keepalive, connect timeout, strict known_hosts checking, optional jump host.
// Over 300 lines on purpose: connect, host-key checking, the persistent shell, exec channels,
// port forwards and reconnect-after-reboot share one connection's life cycle and its errors.
import net from 'node:net';
import { DESCRIPTOR_HINT, isDescriptorLimit, readIdentity } from './credentials.js';
// node-ssh (and ssh2 under it, ~30 % of a cold start) is loaded by the first connection only:
// `chops plan` on a local inventory, `inventory check` and `--help` never pay for it.
import type { NodeSSH } from 'node-ssh';
import type { Client, ClientChannel } from 'ssh2';
import type { Host } from '../inventory/types.js';
import { ConnectError } from '../errors.js';
import { readSecret } from '../inventory/secrets.js';
import { checkHostKey, fingerprint, keyType, knownHostsName, readKnownHosts, recordHostKey } from './known-hosts.js';
import { putCommand, wrapCommand, wrapDeadline } from './wrap.js';
import { ShellSession, type ShellResult } from './shell-session.js';
import type { CommandListener, ExecOptions, ExecResult, Forward, PutOptions, Transport } from './types.js';

let nodeSsh: Promise<typeof import('node-ssh')> | undefined;
const loadNodeSsh = () => (nodeSsh ??= import('node-ssh'));

/** Load the SSH library now, in the background (a command that will connect, once its inventory is read). */
export function preloadSsh(): void {
  loadNodeSsh().catch(() => {}); // a failure surfaces at the first connection
}

interface Endpoint {
  label: string;
  address: string;
  port: number;
  user: string;
  identityFile?: string;
  agent: boolean;
}

export class SshTransport implements Transport {
  readonly kind = 'ssh' as const;
  private ssh?: NodeSSH;
  private jumpSsh?: NodeSSH;
  /** The TCP sockets of the current connection (the host's, or the jump host's). */
  private tcpSockets: net.Socket[] = [];
  private connecting?: Promise<Client>;
  private forwards = new Set<Forward>();
  private closed = false;
  /** The connection's persistent shell (undefined: not opened yet; null: unusable here). */
  private shell?: Promise<ShellSession | undefined> | null;
  /** A connection started by warm(), not yet handed to anyone. */
  private warming?: Promise<Client>;

  constructor(
    readonly def: Host,
    private readonly listener?: CommandListener,
  ) {}

  get host(): string {
    return this.def.name;
  }

  warm(): void {
    if (this.ssh || this.connecting || this.warming) return;
    const w = this.client();
    w.catch(() => {}); // reported to the first command that asks for the connection
    this.warming = w;
  }

  private client(): Promise<Client> {
    if (this.closed) return Promise.reject(new ConnectError(this.host, 'connection already closed'));
    if (this.warming) {
      // The first caller after warm() gets its outcome — including a failure, so an unreachable
      // host costs one connect timeout, not two.
      const w = this.warming;
      this.warming = undefined;
      return w.then((c) => (this.ssh?.connection === c ? c : this.client()));
    }
    if (this.ssh?.connection) return Promise.resolve(this.ssh.connection);
    if (!this.connecting) {
      this.connecting = this.connect().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private async connect(connectTimeoutMs = this.def.ssh.connectTimeoutMs): Promise<Client> {
    const s = this.def.ssh;
    // The module loads while the TCP handshake is under way (one import, cached for every host).
    const lib = loadNodeSsh();
    let sock: NodeJS.ReadableStream & NodeJS.WritableStream;
    if (s.jump) {
      const jumpSock = await this.tcp(s.jump.address, s.jump.port, connectTimeoutMs, 'jump host');
      this.tcpSockets = [jumpSock];
      const jump = new (await lib).NodeSSH();
      await this.open(jump, { label: `jump host ${s.jump.address}`, ...s.jump }, jumpSock, connectTimeoutMs);
      this.jumpSsh = jump;
      sock = await new Promise((resolve, reject) =>
        jump.connection!.forwardOut('127.0.0.1', 0, s.address, s.port, (err, stream) =>
          err ? reject(new ConnectError(this.host, `jump host ${s.jump!.address} cannot reach ${s.address}:${s.port}: ${err.message}`)) : resolve(stream),
        ),
      );
    } else {
      const tcp = await this.tcp(s.address, s.port, connectTimeoutMs, 'host');
      this.tcpSockets = [tcp];
      sock = tcp;
    }
    const ssh = new (await lib).NodeSSH();
    try {
      await this.open(
        ssh,
        { label: 'host', address: s.address, port: s.port, user: s.user, identityFile: s.identityFile, agent: s.agent },
        sock,
        connectTimeoutMs,
      );
    } catch (err) {
      // A failed handshake must not leave its socket open (half-closed by the server, or not at all).
      (sock as { destroy?: () => void }).destroy?.();
      throw err;
    }
    this.ssh = ssh;
    // Every command in flight listens for a drop; dozens at once are normal.
    ssh.connection!.setMaxListeners(0);
    // A dropped connection (reboot, network) must not leave a dead handle behind.
    ssh.connection!.on('close', () => {
      if (this.ssh === ssh) {
        this.ssh = undefined;
        this.shell = undefined;
      }
    });
    // Open the persistent shell now, while the caller's first command is being prepared: the
    // channel open and the remote `sh` start are off that command's path (~a round trip each).
    void this.shellSession(ssh.connection!).catch(() => {});
    return ssh.connection!;
  }

  /** TCP connect with Nagle off and our own deadline (ssh2's readyTimeout starts later). */
  private tcp(address: string, port: number, timeoutMs: number, what: string): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: address, port, noDelay: true });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(
          new ConnectError(this.host, `cannot connect to ${what} ${address}:${port}: no answer within ${timeoutMs / 1000}s`, {
            hint: 'check that the host is up and the address/port in the inventory are right; raise ssh.connect_timeout for slow links',
          }),
        );
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.setNoDelay(true);
        resolve(sock);
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new ConnectError(this.host, `cannot connect to ${what} ${address}:${port}: ${err.code ?? err.message}`, { hint: hintFor(err.code), cause: err }),
        );
      });
    });
  }

  private async open(ssh: NodeSSH, ep: Endpoint, sock: any, connectTimeoutMs: number): Promise<void> {
    const s = this.def.ssh;
    const knownText = await readKnownHosts(s.knownHosts);
    const name = knownHostsName(ep.address, ep.port);
    let refusal: ConnectError | undefined;
    let toRecord: Buffer | undefined;
    const hostVerifier = (key: Buffer): boolean => {
      const verdict = checkHostKey(knownText, name, key);
      if (verdict.status === 'match') return true;
      const fp = `${keyType(key)} ${fingerprint(key)}`;
      if (verdict.status === 'unknown' && s.trustOnFirstUse) {
        toRecord = key;
        return true;
      }
      if (verdict.status === 'unknown') {
        refusal = new ConnectError(this.host, `unknown host key for ${name} (${fp}); it is not in ${s.knownHosts}`, {
          hint: `verify the fingerprint out of band, then add it: ssh-keyscan -p ${ep.port} ${ep.address} >> ${s.knownHosts} (or set ssh.trust_on_first_use: true for this host)`,
        });
      } else if (verdict.status === 'revoked') {
        refusal = new ConnectError(this.host, `host key for ${name} (${fp}) is marked @revoked in ${s.knownHosts}`);
      } else {
        refusal = new ConnectError(
          this.host,
          `HOST KEY CHANGED for ${name}: it now presents ${fp}, which differs from the key in ${s.knownHosts}. Someone may be intercepting the connection, or the host was reinstalled.`,
          {
            hint: `if the change is expected, remove the old key with: ssh-keygen -f ${s.knownHosts} -R '${name}' and add the new one after verifying it`,
          },
        );
      }
      return false;
    };
    let privateKey: string | undefined;
    if (ep.identityFile) {
      try {
        privateKey = await readIdentity(ep.identityFile); // once per run, shared by every host using it
      } catch (e: any) {
        throw new ConnectError(this.host, `cannot read identity file ${ep.identityFile}: ${e.reason ?? e.code ?? e.message}`, {
          hint: isDescriptorLimit(e.code) ? DESCRIPTOR_HINT : 'fix ssh.identity_file in the inventory or use ssh.agent: true',
        });
      }
    }
    const passphrase = s.passphrase && ep.label === 'host' ? await readSecret(s.passphrase, this.def.where) : undefined;
    try {
      await ssh.connect({
        sock,
        host: ep.address,
        port: ep.port,
        username: ep.user,
        privateKey,
        passphrase,
        agent: ep.agent ? process.env.SSH_AUTH_SOCK : undefined,
        readyTimeout: connectTimeoutMs,
        keepaliveInterval: s.keepaliveIntervalMs,
        keepaliveCountMax: 3,
        hostVerifier,
      } as any);
    } catch (err: any) {
      if (refusal) throw refusal;
      const msg = String(err?.message ?? err);
      if (/authentication methods failed/i.test(msg)) {
        throw new ConnectError(this.host, `${ep.user}@${ep.address}:${ep.port} refused our key (authentication failed)`, {
          hint: `check ssh.user and ssh.identity_file (or ssh-agent) for this host; try: ssh -i KEY -p ${ep.port} ${ep.user}@${ep.address} true`,
        });
      }
      throw new ConnectError(this.host, `SSH handshake with ${ep.address}:${ep.port} failed: ${msg}`, { hint: hintFor(err?.code), cause: err });
    }
    if (toRecord) await recordHostKey(s.knownHosts, name, toRecord);
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.run('exec', command, opts);
  }

  probe(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.run('probe', command, opts);
  }

  async put(dest: string, content: string | Buffer, opts: PutOptions): Promise<ExecResult> {
    const cmd = putCommand(dest, opts);
    return this.run(
      'put',
      cmd,
      { stdin: content, sudo: opts.sudo },
      `put ${dest} (${Buffer.byteLength(content)} bytes, mode ${opts.mode}${opts.owner ? `, owner ${opts.owner}` : ''})`,
    );
  }

  /**
   * Connected, authenticated, and the persistent shell — the one every later command goes
   * through, under `sudo -n` when the host says so — answers a ping. A shell that ended instead
   * (sudo asking for a password, a login without a shell) is refused here, before any change.
   * A server that gives no shell session: `true` over an exec channel.
   */
  async verify(timeoutMs: number): Promise<ExecResult> {
    const client = await this.client();
    const sh = await this.shellSession(client);
    // No shell session on this server (or, unexpectedly, one busy): `true` over an exec channel,
    // under the host's own sudo setting, as its commands will run.
    if (!sh || (!sh.available && !sh.ended)) return this.probe('true', { timeoutMs });
    const started = performance.now();
    const r = sh.available ? await sh.ping(timeoutMs) : undefined;
    if (!r || r.lost) {
      void this.forgetShell(sh);
      throw this.shellRefusal(sh, r, timeoutMs);
    }
    const result: ExecResult = {
      command: 'ping (persistent shell)',
      stdout: r.stdout,
      stderr: r.stderr,
      code: r.code,
      durationMs: performance.now() - started,
    };
    this.listener?.({ host: this.host, kind: 'probe', result });
    return result;
  }

  /** Why the persistent shell did not answer its ping, and what to do about it. */
  private shellRefusal(sh: ShellSession, r: ShellResult | undefined, timeoutMs: number): ConnectError {
    const s = this.def.ssh;
    const shell = s.sudo ? 'sudo -n -- sh' : 'sh';
    if (r?.code === 124) return new ConnectError(this.host, `its shell (${shell}) did not answer within ${Math.round(timeoutMs / 1000)}s`);
    const exit = sh.exitStatus;
    if (!exit) {
      return new ConnectError(this.host, `the connection to ${s.address}:${s.port} was lost before its shell answered`, {
        hint: 'check the host and the network, then run the same command again',
      });
    }
    const said = (sh.strayStderr + (r?.stderr ?? '')).replace(/\n?\[chops\][^\n]*/g, '').trim();
    const how = exit.signal ? `killed by ${exit.signal}` : `exit ${exit.code ?? '?'}`;
    return new ConnectError(this.host, `its shell (${shell}) ended before it answered (${how})${said ? `: ${said.split('\n').slice(-2).join(' / ')}` : ''}`, {
      hint: s.sudo
        ? `let ${s.user} run commands through sudo without a password (a NOPASSWD rule), or log in as root with ssh.sudo: false`
        : `check that ${s.user} can log in there and run sh (a login shell that is not nologin, no ForceCommand in sshd_config)`,
    });
  }

  /** A session that died under a command (its backstop killed it) is replaced at the next command. */
  private async forgetShell(sh: ShellSession): Promise<void> {
    const current = this.shell;
    if (current && (await current) === sh && this.shell === current) this.shell = undefined;
  }

  /** The persistent shell of the current connection, opened on first use. */
  private async shellSession(client: Client): Promise<ShellSession | undefined> {
    if (this.shell === null) return undefined;
    if (!this.shell) {
      this.shell = ShellSession.open(client, this.def.ssh.sudo);
      const sh = await this.shell;
      if (!sh) this.shell = null; // e.g. a server refusing more sessions: plain exec channels it is
    }
    return this.shell ?? undefined;
  }

  private async run(kind: 'exec' | 'probe' | 'put', command: string, opts: ExecOptions, label?: string): Promise<ExecResult> {
    const client = await this.client();
    const sudo = opts.sudo ?? this.def.ssh.sudo;
    // The common case — no input, the host's own sudo setting — goes through the connection's
    // persistent shell when it is free; a deadline is the same remote `timeout` an exec channel
    // gets (wrapDeadline), with the same client-side backstop. Opening an exec channel costs a
    // round trip plus sshd's session setup: 50–170 ms on a loaded replica, against ~3 ms.
    if (opts.stdin === undefined && sudo === this.def.ssh.sudo) {
      const sh = await this.shellSession(client);
      if (sh?.available) {
        const started = performance.now();
        const r = await sh.run(wrapDeadline(command, opts.timeoutMs), opts.timeoutMs ? opts.timeoutMs + 10_000 : undefined);
        if (r.lost) void this.forgetShell(sh);
        const result: ExecResult = { command: label ?? command, stdout: r.stdout, stderr: r.stderr, code: r.code, durationMs: performance.now() - started };
        this.listener?.({ host: this.host, kind, result });
        return result;
      }
    }
    const wire = wrapCommand(command, { sudo, timeoutMs: opts.timeoutMs, stdin: opts.stdin !== undefined });
    const started = performance.now();
    const result = await new Promise<ExecResult>((resolve) => {
      const out: Buffer[] = [];
      const errb: Buffer[] = [];
      let code: number | undefined;
      let signal: string | undefined;
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (extra?: { code: number; stderr: string }) => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        client.removeListener('close', onDrop);
        resolve({
          command: label ?? command,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(errb).toString('utf8') + (extra?.stderr ?? ''),
          code: extra?.code ?? code ?? (signal ? 128 : 255),
          signal,
          durationMs: performance.now() - started,
        });
      };
      const onDrop = () => finish({ code: 255, stderr: '\n[chops] connection lost while the command ran' });
      client.once('close', onDrop);
      client.exec(wire, (err: Error | undefined, ch: ClientChannel) => {
        if (err) return finish({ code: 255, stderr: `[chops] could not start command: ${err.message}` });
        ch.on('data', (d: Buffer) => out.push(d));
        ch.stderr.on('data', (d: Buffer) => errb.push(d));
        ch.on('exit', (c: number | null, sig?: string) => {
          if (c !== null && c !== undefined) code = c;
          if (sig) signal = sig;
        });
        ch.on('close', () => finish());
        if (opts.timeoutMs) {
          // The remote `timeout` normally fires first; this is the backstop for a dead peer.
          timer = setTimeout(() => {
            try {
              ch.signal('KILL');
            } catch {
              /* older servers */
            }
            ch.close();
            finish({ code: 124, stderr: `\n[chops] timed out after ${opts.timeoutMs} ms` });
          }, opts.timeoutMs + 10_000);
        }
        if (opts.stdin !== undefined) ch.end(opts.stdin);
      });
    });
    this.listener?.({ host: this.host, kind, result });
    return result;
  }

  async forward(remoteHost: string, remotePort: number): Promise<Forward> {
    await this.client();
    const sockets = new Set<net.Socket>();
    const server = net.createServer((local) => {
      local.setNoDelay(true);
      sockets.add(local);
      local.on('close', () => sockets.delete(local));
      // A socket error before the channel opens (or a refused channel below) must end this one
      // connection, never the process: without a listener, destroy(err) is an uncaught 'error'.
      local.on('error', () => {});
      const conn = this.ssh?.connection;
      if (!conn) return local.destroy();
      conn.forwardOut('127.0.0.1', 0, remoteHost, remotePort, (err, remote) => {
        // Remote port refused (server stopped/restarting): the client sees a reset, as with TCP.
        if (err) return local.destroy();
        local.pipe(remote).pipe(local);
        local.on('error', () => remote.destroy());
        remote.on('error', () => local.destroy());
        local.on('close', () => remote.destroy());
        remote.on('close', () => local.destroy());
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const localPort = (server.address() as net.AddressInfo).port;
    const fwd: Forward = {
      localPort,
      close: async () => {
        this.forwards.delete(fwd);
        for (const s of sockets) s.destroy();
        await new Promise<void>((r) => server.close(() => r()));
      },
    };
    this.forwards.add(fwd);
    this.listener?.({
      host: this.host,
      kind: 'forward',
      result: { command: `forward 127.0.0.1:${localPort} -> ${remoteHost}:${remotePort}`, stdout: '', stderr: '', code: 0, durationMs: 0 },
    });
    return fwd;
  }

  async reconnect(opts: { expectNewBootFrom?: string; timeoutMs?: number } = {}): Promise<void> {
    this.dropConnection();
    const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
    let last = 'no attempt yet';
    while (Date.now() < deadline) {
      try {
        const left = Math.max(1000, Math.min(5000, deadline - Date.now()));
        await this.connect(left);
        if (!opts.expectNewBootFrom) return;
        const r = await this.probe('cat /proc/sys/kernel/random/boot_id');
        const bootId = r.stdout.trim();
        if (r.code === 0 && bootId && bootId !== opts.expectNewBootFrom) return;
        // Still the old boot: the reboot has not happened yet (a live connection survives it).
        last = 'host answered with the same boot id (not rebooted yet)';
        this.dropConnection();
      } catch (e: any) {
        last = e?.message ?? String(e);
        this.dropConnection();
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    throw new ConnectError(this.host, `did not come back within ${Math.round((opts.timeoutMs ?? 300_000) / 1000)}s (last: ${last})`, {
      hint: 'check the host console (it may be stuck in emergency mode, e.g. a bad /etc/fstab line), then `chops resume`',
    });
  }

  /** End the connection; FINAL (the run is over): its disconnect closes the shell's channel too. */
  private dropConnection(final = false): void {
    const ssh = this.ssh;
    this.ssh = undefined;
    const shell = this.shell;
    this.shell = undefined;
    // Each packet sent wakes the host's sshd: at the end of a run, the disconnect alone.
    if (!final) void shell?.then((sh) => sh?.close());
    try {
      ssh?.connection?.end();
    } catch {
      /* already gone */
    }
    try {
      this.jumpSsh?.connection?.end();
    } catch {
      /* already gone */
    }
    this.jumpSsh = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    // A connection still being opened (warm()) must be closed once it is up, or it would keep
    // the process alive.
    const pending = this.connecting ?? this.warming;
    this.warming = undefined;
    if (pending) await pending.catch(() => {});
    for (const f of [...this.forwards]) await f.close();
    const sockets = this.tcpSockets;
    this.tcpSockets = [];
    this.dropConnection(true);
    // end() has written the disconnect (on a direct connection at once; through a jump host it
    // may still be queued, and is then dropped: the host sees the connection close, which ends
    // the session all the same). Waiting for the server's own close would keep chops alive while
    // sshd tears the session down (tens of ms at the end of every run on a loaded machine).
    for (const sock of sockets) sock.destroy();
  }
}

function hintFor(code?: string): string | undefined {
  switch (code) {
    case 'ECONNREFUSED':
      return 'nothing listens on that port: is sshd running, and is ssh.port right?';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the address does not resolve: fix `address` in the inventory';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to the host: check the network or use ssh.jump';
    case 'ETIMEDOUT':
      return 'the host did not answer: is it up, or is a firewall dropping packets?';
    case 'EMFILE':
    case 'ENFILE':
      return DESCRIPTOR_HINT;
    default:
      return undefined;
  }
}
