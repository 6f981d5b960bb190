// Turn raw CLI options into a playbook's typed parameters, refusing anything it did not declare.
import { UsageError } from '../errors.js';
import { DURATION_RANGES, decimalInt, durationMs, flagValueCheck, printable, show, type ValueCheck } from '../inventory/values.js';
import type { ParamSpec, Playbook } from './playbook.js';

export function parseParams(pb: Playbook, raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const known = new Map<string, ParamSpec>(pb.params.map((p) => [p.name, p]));
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) {
      const names = pb.params.map((p) => `--${p.name}`).join(', ') || '(none)';
      throw new UsageError(`playbook ${pb.name} has no parameter --${printable(key.slice(0, 60), { oneLine: true })}`, {
        hint: `its parameters are: ${names} (see: chops playbooks)`,
      });
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

// Every value arrives as the text typed (commands/argv.ts): a string, `true` for a flag given
// without a value, an array when repeated. Numbers and durations use the inventory's checks
// (inventory/values.ts), so `--wait-timeout 0s` is refused like `wait_timeout: 0s`.
function coerce(pb: Playbook, spec: ParamSpec, v: unknown): unknown {
  const shown = (x: unknown) => (typeof x === 'string' ? show(x) : x === true ? '(no value)' : JSON.stringify(x));
  const bad = (expected: string, hint?: string) =>
    new UsageError(`--${spec.name} for playbook ${pb.name}: expected ${expected}, got ${shown(v)}`, hint ? { hint } : {});
  if (Array.isArray(v) && spec.type !== 'strings') {
    throw new UsageError(`--${spec.name} for playbook ${pb.name} was given ${v.length} times; give it once`);
  }
  if (v === true && spec.type !== 'boolean')
    throw new UsageError(`--${spec.name} for playbook ${pb.name} needs a value: ${spec.description}`, { hint: `write --${spec.name} VALUE` });
  const text = typeof v === 'number' ? String(v) : v;
  const checkWith = (check: ValueCheck) => {
    const c = check(String(text));
    if (!c.ok) throw new UsageError(`--${spec.name} for playbook ${pb.name}: ${c.message ?? 'invalid value'}`, c.hint ? { hint: c.hint } : {});
    return c.value;
  };
  switch (spec.type) {
    case 'string':
      if (typeof text !== 'string' || text === '') throw bad('a non-empty value');
      return text;
    case 'strings': {
      const list = Array.isArray(v) ? v : [v];
      for (const item of list) {
        if (item === true)
          throw new UsageError(`--${spec.name} for playbook ${pb.name} needs a value: ${spec.description}`, { hint: `write --${spec.name} VALUE` });
        if (String(item).trim() === '')
          throw new UsageError(`--${spec.name} for playbook ${pb.name}: got an empty value`, { hint: `give --${spec.name} a non-empty value` });
      }
      return list.map(String);
    }
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (v === 'true') return true;
      if (v === 'false') return false;
      throw bad('true or false');
    case 'int':
      return checkWith(spec.check ?? flagValueCheck(spec.name) ?? ((w) => decimalInt(w, 0, 1_000_000_000)));
    case 'duration':
      return checkWith(spec.check ?? flagValueCheck(spec.name) ?? ((w) => durationMs(w, DURATION_RANGES.any)));
    case 'choice':
      if (typeof text !== 'string' || !spec.choices?.includes(text)) throw bad(`one of ${spec.choices?.join(', ')}`);
      return text;
  }
}
