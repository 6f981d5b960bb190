// Turn raw CLI options into a playbook's typed parameters, refusing anything it did not declare.
import { UsageError } from '../errors.js';
import { parseDuration } from '../duration.js';
import type { ParamSpec, Playbook } from './playbook.js';

export function parseParams(pb: Playbook, raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const known = new Map(pb.params.map((p) => [p.name, p]));
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) {
      const names = pb.params.map((p) => `--${p.name}`).join(', ') || '(none)';
      throw new UsageError(`playbook ${pb.name} has no parameter --${key}`, { hint: `its parameters are: ${names} (see: chops playbooks)` });
    }
  }
  for (const spec of pb.params) {
    const v = raw[spec.name];
    if (v === undefined) {
      if (spec.required) throw new UsageError(`playbook ${pb.name} needs --${spec.name}: ${spec.description}`);
      if (spec.default !== undefined) out[spec.name] = spec.default;
      continue;
    }
    out[spec.name] = coerce(pb, spec, v);
  }
  return out;
}

function coerce(pb: Playbook, spec: ParamSpec, v: unknown): unknown {
  const bad = (expected: string) => new UsageError(`--${spec.name} for playbook ${pb.name}: expected ${expected}, got ${JSON.stringify(v)}`);
  switch (spec.type) {
    case 'string':
      if (Array.isArray(v)) throw bad('a single value');
      return String(v);
    case 'strings':
      return (Array.isArray(v) ? v : [v]).map(String);
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (v === 'true') return true;
      if (v === 'false') return false;
      throw bad('true or false');
    case 'int': {
      const n = Number(v);
      if (!Number.isInteger(n)) throw bad('an integer');
      return n;
    }
    case 'duration': {
      const ms = parseDuration(String(v));
      if (ms === undefined) throw bad('a duration like 90s, 5m, 1h');
      return ms;
    }
    case 'choice':
      if (!spec.choices?.includes(String(v))) throw bad(`one of ${spec.choices?.join(', ')}`);
      return String(v);
  }
}
