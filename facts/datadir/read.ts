// A fact is a read-only command plus a pure parser (pyinfra style). This module is the bridge to
// the engine's fact machinery (src/fact.ts, host.fact: cached per step): when the handle has
// `fact`, it is used; otherwise the command is probed and parsed here, with the same contract.
import type { HostHandle } from '../../src/host.js';

export interface FactOutput {
  stdout: string;
  stderr: string;
  code: number;
}

export interface FactDef<A, T> {
  name: string;
  command: (arg: A, host: HostHandle) => string;
  parse: (out: FactOutput, arg: A, host: HostHandle) => T;
}

export async function readFact<A, T>(host: HostHandle, fact: FactDef<A, T>, arg: A, opts: { timeoutMs?: number } = {}): Promise<T> {
  const r = await host.runString('probe', fact.command(arg, host), { nothrow: true, timeoutMs: opts.timeoutMs ?? 120_000 });
  try {
    return fact.parse({ stdout: r.stdout, stderr: r.stderr, code: r.code }, arg, host);
  } catch (err) {
    throw new Error(`${host.name}: fact "${fact.name}": ${(err as Error).message}`);
  }
}
