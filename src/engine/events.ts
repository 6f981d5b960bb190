// Every event a run emits, as one discriminated union: what `--json` prints (one object per line,
// with a `ts`), what the run log and the report read, what a step may emit through ctx.run.emit.
// Adding a kind here is the only way to add one; the compiler then finds every consumer.

export type RunEvent =
  | { type: 'run-start'; runId: string; playbook: string; params: Record<string, unknown>; hosts: string[]; resumed: boolean }
  | { type: 'run-end'; runId: string; outcome: 'succeeded' | 'failed' | 'interrupted'; durationMs: number }
  | { type: 'plan-start'; playbook: string; params: Record<string, unknown>; hosts: string[] }
  | { type: 'plan-end'; ok: boolean; changes: number }
  | { type: 'planned'; host: string; step?: string; kind: 'exec' | 'put'; command: string; content?: string }
  | { type: 'step-start'; host: string; phase: string; step: string }
  | { type: 'step-done'; host: string; phase: string; step: string; durationMs: number; changed: boolean; skipped?: string; note?: string }
  | { type: 'step-failed'; host: string; phase: string; step: string; durationMs: number; error: string }
  /** A step not run: done before a resume, passed over by the resume policy, or the run is stopping. */
  | { type: 'step-skipped'; host: string; phase: string; step: string; reason: string }
  | { type: 'result'; host: string; phase: string; step: string; data: unknown }
  | { type: 'note'; host: string; step: string; text: string }
  | { type: 'rollback'; host: string; phase: string; step: string; ok: boolean; error?: string }
  /** Long work (a copy pass, a download): bytes done of total, rate in bytes/s. */
  | { type: 'progress'; host: string; step: string; text: string; bytes?: number; total?: number; rate?: number; etaMs?: number }
  /** Something the operator should know that does not stop the run. */
  | { type: 'warning'; host?: string; gate?: string; text?: string; count?: number; lines?: string[] }
  /** What a health gate saw when it decided (for the report and the run log). */
  | { type: 'gate'; host: string; gate: string; passed: boolean; value: string; waitedMs: number }
  /** What the capability probe found on a server (once per server start per run): feature → present. */
  | { type: 'capabilities'; host: string; version: string; features: Record<string, boolean> }
  | { type: 'error'; host?: string; phase?: string; step?: string; error: string; resume?: string };

export type RunEventType = RunEvent['type'];
