// One interface for every way of touching a host: real SSH, the local machine, or the plan
// recorder. Tasks never see which one they got.

export interface ExecOptions {
  /** Bytes to feed on stdin (used by put and by commands that read scripts). */
  stdin?: string | Buffer;
  /** Run through `sudo -n` when the host's inventory says sudo. Default: the host setting. */
  sudo?: boolean;
  /** Kill the remote command after this long; the result then has code 124. */
  timeoutMs?: number;
}

export interface ExecResult {
  command: string;
  stdout: string;
  stderr: string;
  /** Exit code; 124 on timeout, 255 when the connection dropped. */
  code: number;
  signal?: string;
  durationMs: number;
  /** True when the plan transport recorded the command instead of running it. */
  recorded?: boolean;
}

export interface PutOptions {
  /** Octal mode as a string, e.g. "0644" (strings, never YAML numbers). */
  mode: string;
  owner?: string;
  group?: string;
  sudo?: boolean;
}

export interface Forward {
  /** 127.0.0.1 port on the control machine that tunnels to the remote target. */
  localPort: number;
  close(): Promise<void>;
  /** Start connecting now, in the background; a failure is reported by the first command. */
  warm?(): void;
}

/** Called for every command a transport runs or records, for the run log and the plan. */
export type CommandListener = (event: { host: string; kind: 'exec' | 'probe' | 'put' | 'forward'; result: ExecResult }) => void;

export interface Transport {
  readonly kind: 'ssh' | 'local' | 'plan';
  readonly host: string;
  /** A command that may change the host. Recorded, not run, in plan mode. */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** A read-only command (facts). Runs in plan mode too. */
  probe(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Write a file atomically with mode/owner, content piped through stdin. */
  put(dest: string, content: string | Buffer, opts: PutOptions): Promise<ExecResult>;
  /** Tunnel a TCP port on the remote side (e.g. ClickHouse 8123) over the same connection. */
  forward(remoteHost: string, remotePort: number): Promise<Forward>;
  /** Drop and re-establish the connection (after a reboot); waits until `boot_id` changes when asked. */
  reconnect(opts?: { expectNewBootFrom?: string; timeoutMs?: number }): Promise<void>;
  close(): Promise<void>;
  /** Start connecting now, in the background; a failure is reported by the first command. */
  warm?(): void;
  /** Reach the host and prove it runs commands, as cheaply as the transport can (code 0: it does). */
  verify(timeoutMs: number): Promise<ExecResult>;
}
