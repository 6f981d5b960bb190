// What a task sees of a host: zx-style tagged commands, quoting done for it, sudo/timeouts/logging
// handled by the transport. `$` changes the host (recorded in plan mode); `probe` only reads.
import { createHash } from 'node:crypto';
import type { Host } from './inventory/types.js';
import type { ExecOptions, ExecResult, Transport } from './transport/types.js';
import { CommandError } from './errors.js';
import { sh } from './quote.js';
import { FactCache, factKey, type Fact } from './fact.js';

export interface CmdOptions extends ExecOptions {
  /** Return the result instead of throwing on a non-zero exit. */
  nothrow?: boolean;
}

export interface CommandTag {
  (strings: TemplateStringsArray, ...values: any[]): Promise<ExecResult>;
  (opts: CmdOptions): CommandTag;
}

export class HostHandle {
  readonly $: CommandTag;
  readonly probe: CommandTag;
  /** Progress messages for the renderer (e.g. "waiting for queue: 12 entries"). */
  onNote?: (text: string) => void;
  /** Where SQL sent to this host's ClickHouse is logged (the run log), like its shell commands. */
  logSql?: (kind: 'exec' | 'probe', statement: string, code: number, durationMs: number, note: string) => void;

  /** Facts read during the current step (see src/fact.ts). */
  readonly facts = new FactCache();

  constructor(
    readonly def: Host,
    readonly transport: Transport,
    readonly plan: boolean,
  ) {
    this.$ = this.tag('exec', {});
    this.probe = this.tag('probe', {});
  }

  get name(): string {
    return this.def.name;
  }

  get vars(): Record<string, unknown> {
    return this.def.vars;
  }

  note(text: string): void {
    this.onNote?.(text);
  }

  private tag(kind: 'exec' | 'probe', base: CmdOptions): CommandTag {
    const fn = (first: TemplateStringsArray | CmdOptions, ...values: any[]): any => {
      if (!Array.isArray(first) || !('raw' in (first as object))) {
        return this.tag(kind, { ...base, ...(first as CmdOptions) });
      }
      return this.runString(kind, sh(first as TemplateStringsArray, ...values), base);
    };
    return fn as CommandTag;
  }

  /**
   * Read a fact (src/fact.ts): its command runs read-only (in plan mode too) and its pure parser
   * turns the output into a value. Cached for the current step; any change made on this host
   * (host.$, putFile) drops the cache, so a fact asked for after a change is read again.
   */
  fact<T>(fact: Fact<T, void>): Promise<T>;
  fact<T, A>(fact: Fact<T, A>, arg: A): Promise<T>;
  fact<T, A>(fact: Fact<T, A>, arg?: A): Promise<T> {
    return this.facts.get(factKey(fact, arg), async () => {
      const r = await this.transport.probe(fact.command(arg as A, this.def), { timeoutMs: fact.timeoutMs ?? 30_000 });
      return fact.parse({ stdout: r.stdout, stderr: r.stderr, code: r.code }, arg as A, this.def);
    });
  }

  /**
   * A value that only exists once a change has been made (the UUID of a filesystem not yet
   * created, the partition a partitioning step will make). The run reads it; the plan, which
   * makes no change, shows PLACEHOLDER instead. The one place where plan mode is visible to a task.
   */
  async whenApplied<T>(placeholder: T, read: () => Promise<T>): Promise<T> {
    return this.plan ? placeholder : read();
  }

  /** Run an already-built command string (built with sh``/shq, never by concatenating input). */
  async runString(kind: 'exec' | 'probe', command: string, opts: CmdOptions = {}): Promise<ExecResult> {
    if (kind === 'exec') this.facts.clear(); // the host may change: what we knew may be stale
    const r = kind === 'exec' ? await this.transport.exec(command, opts) : await this.transport.probe(command, opts);
    if (r.code !== 0 && !opts.nothrow) {
      throw new CommandError(this.name, r.command, r.code, r.stdout, r.stderr);
    }
    return r;
  }

  /**
   * Make DEST hold exactly CONTENT with MODE/OWNER. Reads the current file first, so an
   * unchanged file is not rewritten (idempotent; the plan shows only real differences).
   */
  async putFile(dest: string, content: string, opts: { mode: string; owner?: string; group?: string }): Promise<{ changed: boolean }> {
    const want = createHash('sha256').update(content).digest('hex');
    const cur = await this.probe({ nothrow: true })`sha256sum -- ${dest} 2>/dev/null; stat -c '%a %U %G' -- ${dest} 2>/dev/null`;
    const [sumLine, statLine] = cur.stdout.split('\n');
    const sameContent = sumLine?.split(' ')[0] === want;
    const [mode, owner, group] = (statLine ?? '').split(' ');
    const sameMode = Number.parseInt(mode ?? '', 8) === Number.parseInt(opts.mode, 8);
    const sameOwner = (!opts.owner || owner === opts.owner) && (!opts.group || group === opts.group);
    if (sameContent && sameMode && sameOwner) return { changed: false };
    this.facts.clear();
    const r = await this.transport.put(dest, content, opts);
    if (r.code !== 0) throw new CommandError(this.name, r.command, r.code, r.stdout, r.stderr);
    return { changed: true };
  }
}
