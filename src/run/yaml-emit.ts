// A small, fast YAML emitter for chops' own data files (the run state is rewritten after every
// step; the general-purpose `yaml` stringifier costs ~5 ms a time on a 20-host run). Block style,
// keys in insertion order; a string that could be misread as another type, or that has any
// special character, is written double-quoted with JSON escapes (a valid YAML 1.2 scalar).
// Round-trip with `yaml.parse` is tested on hostile strings.

const PLAIN = /^[A-Za-z_./][A-Za-z0-9_ ./:@+,-]*$/;
const RESERVED = /^(?:true|false|yes|no|on|off|null|y|n|~)$/i;

function scalarString(s: string): string {
  if (s !== '' && PLAIN.test(s) && !RESERVED.test(s) && !s.endsWith(' ') && !s.includes(': ') && !s.includes(' #')) return s;
  return JSON.stringify(s);
}

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : v > 0 ? '.inf' : v < 0 ? '-.inf' : '.nan';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return String(v);
  if (v instanceof Date) return JSON.stringify(v.toISOString());
  return scalarString(String(v));
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function emit(v: unknown, indent: string, out: string[]): void {
  // called for the value of a key or list item that is a non-empty collection
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isMap(item) && Object.keys(item).length > 0) {
        const sub: string[] = [];
        emitMap(item, indent + '  ', sub);
        out.push(`${indent}- ${sub[0].slice(indent.length + 2)}`, ...sub.slice(1));
      } else if (Array.isArray(item) && item.length > 0) {
        out.push(`${indent}-`);
        emit(item, indent + '  ', out);
      } else out.push(`${indent}- ${inline(item)}`);
    }
  } else if (isMap(v)) emitMap(v, indent, out);
}

function inline(v: unknown): string {
  if (Array.isArray(v)) return '[]';
  if (isMap(v)) return '{}';
  return scalar(v);
}

function emitMap(m: Record<string, unknown>, indent: string, out: string[]): void {
  for (const [k, v] of Object.entries(m)) {
    if (v === undefined) continue;
    const key = scalarString(k);
    if ((Array.isArray(v) && v.length > 0) || (isMap(v) && Object.keys(v).length > 0)) {
      out.push(`${indent}${key}:`);
      emit(v, Array.isArray(v) ? indent : indent + '  ', out);
    } else out.push(`${indent}${key}: ${inline(v)}`);
  }
}

/** YAML text for a plain-data object (maps, lists, strings, numbers, booleans, null). */
export function emitYaml(doc: Record<string, unknown>): string {
  const out: string[] = [];
  emitMap(doc, '', out);
  return out.join('\n') + '\n';
}
