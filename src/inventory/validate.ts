// Walks the YAML node tree (not plain JS values) against the declarative schema, so every problem
// carries the line:column it was written at, and collects all of them instead of stopping early.

import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type YAMLMap } from 'yaml';
import { closestKey, joinKey, show, type Problem, type SourcePos } from './problems.js';
import { absolutePath, type MapRule, type RecordRule, type Rule, type RuleContext } from './rules.js';

/** A user-named entry of a record (a cluster), in file order (JS objects reorder numeric keys). */
export interface RecordEntry {
  name: string;
  value: unknown;
  at: SourcePos;
}

interface PairEntry {
  at: SourcePos;
  value: unknown;
}

const SECRET_FORMS = 'secrets are references: {env: NAME} or {file: PATH}';
const SECRET_HINT = 'put the value in an environment variable or a root-only file (chmod 600) and reference it';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class SchemaWalker {
  readonly problems: Problem[] = [];
  /** Where each map value of the output was written, for later (semantic) messages. */
  readonly positions = new WeakMap<object, SourcePos>();
  constructor(
    _doc: Document,
    private readonly text: string,
    private readonly lines: LineCounter,
    private readonly ctx: RuleContext,
    /** Every alias and what it stands for, resolved once (limits.ts bounds the total expansion). */
    private readonly aliases: Map<Node, Node | undefined>,
  ) {}

  /** The converted value of `node`, or undefined when it is wrong (a problem is recorded). */
  walk(node: unknown, rule: Rule, key: string, fallback: SourcePos): unknown {
    const n = this.deref(node);
    const at = this.posOf(n) ?? fallback;
    switch (rule.kind) {
      case 'scalar':
        return this.walkScalar(n, rule, key, at);
      case 'map':
        return this.walkMap(n, rule, key, at);
      case 'record':
        return this.walkRecord(n, rule, key, at);
      case 'list': {
        if (!isEmpty(n) && !isSeq(n)) return this.wrongShape(n, rule.what, key, at);
        const items = isSeq(n) ? n.items : [];
        const out = items.map((item, i) => this.walk(item, rule.item, joinKey(key, i), at));
        if (rule.min !== undefined && out.length < rule.min) {
          this.add(key, at, rule.tooFew?.message ?? `expected at least ${rule.min} items`, rule.tooFew?.hint);
        }
        return out;
      }
      case 'secret':
        return this.walkSecret(n, key, at);
      case 'any':
        return this.toPlain(n, key, at);
      case 'either':
        return isMap(n) ? this.walkMap(n, rule.map, key, at) : this.walkScalar(n, rule.scalar, key, at);
    }
  }

  add(key: string, at: SourcePos, message: string, hint?: string): void {
    this.problems.push({ key, at, message, ...(hint ? { hint } : {}) });
  }

  posOf(node: unknown): SourcePos | undefined {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? this.lines.linePos(range[0]) : undefined;
  }

  private deref(node: unknown): unknown {
    let n = node;
    // yaml's Alias.resolve() scans the whole document per call: quadratic on a file of aliases.
    for (let hops = 0; isAlias(n); hops++) n = hops > 1000 ? null : (this.aliases.get(n as Node) ?? null);
    return n;
  }

  private walkScalar(n: unknown, rule: Extract<Rule, { kind: 'scalar' }>, key: string, at: SourcePos): unknown {
    if (isMap(n) || isSeq(n)) return this.wrongShape(n, rule.expected, key, at);
    const value = isScalar(n) ? n.value : null;
    const source = this.sourceOf(n);
    const checked = rule.check(value, source, this.ctx);
    if (checked.ok) return checked.value;
    this.add(key, at, checked.message ?? `expected ${rule.expected}, found ${describe(value, source)}`, checked.hint);
    return undefined;
  }

  private walkMap(n: unknown, rule: MapRule, key: string, at: SourcePos): Record<string, unknown> | undefined {
    if (!isEmpty(n) && !isMap(n)) return this.wrongShape(n, rule.what, key, at);
    const pairs = isMap(n) ? this.pairsOf(n, key) : new Map<string, PairEntry>();
    const out: Record<string, unknown> = {};
    this.positions.set(out, at);
    for (const [name, entry] of pairs) {
      const f = Object.hasOwn(rule.fields, name) ? rule.fields[name] : undefined;
      if (!f) {
        this.unknownKey(rule, name, joinKey(key, name), entry.at);
        continue;
      }
      const value = this.walk(entry.value, f.rule, joinKey(key, name), entry.at);
      if (value !== undefined) out[f.as ?? name] = value;
    }
    for (const [name, f] of Object.entries(rule.fields)) {
      if (f.required && !pairs.has(name)) this.add(joinKey(key, name), at, f.required.message ?? 'missing', f.required.hint);
    }
    return out;
  }

  private unknownKey(rule: MapRule, name: string, key: string, at: SourcePos): void {
    // A key that belongs one level down (`port:` on a replica instead of under `ssh:`).
    for (const [section, f] of Object.entries(rule.fields)) {
      if (f.rule.kind === 'map' && Object.hasOwn(f.rule.fields, name)) {
        return this.add(key, at, `unknown key; did you mean '${section}.${name}'?`, `move it under \`${section}:\``);
      }
    }
    const known = Object.keys(rule.fields);
    const close = closestKey(name, known);
    if (close) return this.add(key, at, `unknown key; did you mean '${close}'?`);
    this.add(key, at, 'unknown key', `valid keys here: ${known.join(', ')}`);
  }

  private walkRecord(n: unknown, rule: RecordRule, key: string, at: SourcePos): RecordEntry[] | undefined {
    if (!isEmpty(n) && !isMap(n)) return this.wrongShape(n, rule.what, key, at);
    const out: RecordEntry[] = [];
    for (const [name, entry] of isMap(n) ? this.pairsOf(n, key) : []) {
      const checked = rule.key.check(name, name, this.ctx);
      if (!checked.ok) this.add(joinKey(key, name), entry.at, `expected ${rule.key.expected}, found ${show(name)}`);
      out.push({ name, at: entry.at, value: this.walk(entry.value, rule.value, joinKey(key, name), entry.at) });
    }
    if (out.length === 0 && rule.tooFew) this.add(key, at, rule.tooFew.message, rule.tooFew.hint);
    return out;
  }

  // Never echoes the value: an inline secret must not end up in terminals, CI logs or run logs.
  private walkSecret(n: unknown, key: string, at: SourcePos): unknown {
    if (!isMap(n)) {
      const inline = isScalar(n) && n.value !== null ? ', not an inline value' : '';
      this.add(key, at, `${SECRET_FORMS}${inline}`, SECRET_HINT);
      return undefined;
    }
    const pairs = this.pairsOf(n, key);
    const names = [...pairs.keys()];
    if (names.length !== 1 || (names[0] !== 'env' && names[0] !== 'file')) {
      // The keys are not shown: `{hunter2}` is a map whose only key is the secret itself.
      const found = names.length === 0 ? 'an empty map' : `a map with ${names.length === 1 ? 'one other key' : `${names.length} keys`}`;
      this.add(key, at, `${SECRET_FORMS} (found ${found})`, SECRET_HINT);
      return undefined;
    }
    const entry = pairs.get(names[0])!;
    const v = this.deref(entry.value);
    const value = isScalar(v) ? v.value : null;
    if (names[0] === 'env') {
      if (typeof value === 'string' && ENV_NAME.test(value)) return { env: value };
      this.add(joinKey(key, 'env'), entry.at, 'expected an environment variable name (letters, digits, _)');
      return undefined;
    }
    const checked = absolutePath().check(value, this.sourceOf(v), this.ctx);
    if (checked.ok) return { file: checked.value };
    this.add(joinKey(key, 'file'), entry.at, 'expected an absolute path to the secret file', 'use an absolute path, or ~/...');
    return undefined;
  }

  /** Free-form data as plain JS; numbers YAML silently changed (0644 -> 644, 22.10 -> 22.1) are refused. */
  private toPlain(node: unknown, key: string, fallback: SourcePos): unknown {
    const n = this.deref(node);
    const at = this.posOf(n) ?? fallback;
    if (isMap(n)) {
      const out: Record<string, unknown> = {};
      for (const [name, entry] of this.pairsOf(n, key)) {
        // defineProperty: a key named __proto__ stays data instead of replacing the prototype.
        Object.defineProperty(out, name, {
          value: this.toPlain(entry.value, joinKey(key, name), entry.at),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    if (isSeq(n)) return n.items.map((item, i) => this.toPlain(item, joinKey(key, i), at));
    if (!isScalar(n)) return null;
    const source = this.sourceOf(n);
    if (typeof n.value === 'number' && source && String(n.value) !== source) {
      this.add(key, at, `YAML 1.2 reads ${source} as the number ${n.value}`, `quote it: ${JSON.stringify(source)}`);
    }
    return n.value;
  }

  /** The pairs of a map in order, with `<<` merge keys applied and duplicate keys reported. */
  private pairsOf(map: YAMLMap, key: string): Map<string, PairEntry> {
    const explicit = new Map<string, PairEntry>();
    const merged = new Map<string, PairEntry>();
    for (const pair of map.items) {
      const k = pair.key;
      if (isScalar(k) && typeof k.value === 'symbol') {
        for (const source of this.mergeSources(pair.value, key)) {
          for (const [name, entry] of this.pairsOf(source, key)) if (!merged.has(name)) merged.set(name, entry);
        }
        continue;
      }
      const at = this.posOf(k) ?? this.posOf(map)!;
      if (!isScalar(k) || !['string', 'number', 'boolean'].includes(typeof k.value)) {
        this.add(key, at, 'keys must be plain words');
        continue;
      }
      // A key is a name: kept as written. YAML 1.2 would read the cluster `01` as 1, `22.10` as
      // 22.1 and the vars key `0644` as 644.
      const name = typeof k.value === 'string' ? k.value : this.sourceOf(k) || String(k.value);
      const first = explicit.get(name);
      if (first) {
        this.add(joinKey(key, name), at, `duplicate key (first at ${first.at.line}:${first.at.col})`, 'keep one of them');
        continue;
      }
      explicit.set(name, { at, value: pair.value });
    }
    for (const [name, entry] of merged) if (!explicit.has(name)) explicit.set(name, entry);
    return explicit;
  }

  private mergeSources(value: unknown, key: string): YAMLMap[] {
    const n = this.deref(value);
    const items = isSeq(n) ? n.items.map((i) => this.deref(i)) : [n];
    if (items.every(isMap)) return items as YAMLMap[];
    this.add(key, this.posOf(n) ?? { line: 1, col: 1 }, 'a merge key (<<) needs a map or a list of maps');
    return [];
  }

  private wrongShape(n: unknown, expected: string, key: string, at: SourcePos): undefined {
    const found = isMap(n) ? 'a map' : isSeq(n) ? 'a list' : describe(isScalar(n) ? n.value : null, this.sourceOf(n));
    this.add(key, at, `expected ${expected}, found ${found}`);
    return undefined;
  }

  private sourceOf(n: unknown): string {
    return isScalar(n) && n.range ? this.text.slice(n.range[0], n.range[1]) : '';
  }
}

/** `key:` with nothing after it: an empty section or list rather than a type error. */
function isEmpty(n: unknown): boolean {
  return n === null || n === undefined || (isScalar(n) && n.value === null);
}

function describe(value: unknown, source: string): string {
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'string') return show(value);
  if (typeof value === 'number' && source && source !== String(value)) {
    return `${source} (YAML 1.2 reads it as the number ${value})`;
  }
  return String(value);
}
