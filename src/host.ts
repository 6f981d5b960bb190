// What a task sees of a host: zx-style tagged commands, quoting done for it, sudo/timeouts/logging
// handled by the transport. `$` changes the host (recorded in plan mode); `probe` only reads.
import { createHash } from 'node:crypto';
import type { Host } from './inventory/types.js';
import type { ExecOptions, ExecResult, Transport } from './transport/types.js';
import { CommandError } from './errors.js';
import { sh } from './quote.js';

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

  constructor(readonly def: Host, readonly transport: Transport, readonly plan: boolean) {
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

  /** Run an already-built command string (built with sh``/shq, never by concatenating input). */
  async runString(kind: 'exec' | 'probe', command: string, opts: CmdOptions = {}): Promise<ExecResult> {
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
    const r = await this.transport.put(dest, content, opts);
    if (r.code !== 0) throw new CommandError(this.name, r.command, r.code, r.stdout, r.stderr);
    return { changed: true };
  }
}
