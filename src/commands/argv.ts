// The command line as written. cac (through mri) turns `''` and `123` into numbers (`0022` becomes
// 22, `''` becomes 0), repeated flags into arrays, and reads `--max-queue-size -5` as the flag `-5`.
// chops takes every flag's value as the text the operator typed, and validates it itself
// (commands/common.ts, engine/params.ts, inventory/values.ts): exit 2 with a message, never a crash.

/** Flags that take no value (cac declares them without <value>). */
const BOOLEAN = new Set(['json', 'yes', 'force', 'help', 'version']);
const SHORT: Record<string, string> = { i: 'inventory', y: 'yes', h: 'help', v: 'version' };

/**
 * A playbook's own `--version V` (rolling-upgrade) after `run`/`plan`/`graph`: cac and mri know
 * `--version` only as chops' boolean version flag, so it travels under this name and
 * playbookArgs (common.ts) hands it to the playbook as `version` again.
 */
export const PLAYBOOK_VERSION_FLAG = 'playbook-version';
const PLAYBOOK_COMMANDS = new Set(['run', 'plan', 'graph']);

/** `--flag -5` becomes `--flag=-5`: a negative number is a value, never a flag of chops. */
export function normaliseArgv(argv: string[]): string[] {
  const out: string[] = [];
  let playbookCommand = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = argv[i + 1];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (i >= 2 && !playbookCommand && !a.startsWith('-') && PLAYBOOK_COMMANDS.has(a)) playbookCommand = true;
    if (playbookCommand && (a === '--version' || a.startsWith('--version='))) {
      const value = a.startsWith('--version=') ? a.slice('--version='.length) : next !== undefined && !next.startsWith('--') ? next : undefined;
      out.push(value === undefined ? `--${PLAYBOOK_VERSION_FLAG}` : `--${PLAYBOOK_VERSION_FLAG}=${value}`);
      if (a === '--version' && value !== undefined) i++;
      continue;
    }
    if (/^--?[A-Za-z][\w-]*$/.test(a) && !BOOLEAN.has(longName(a)) && next !== undefined && /^-[0-9.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

function longName(flag: string): string {
  const name = flag.replace(/^--?/, '');
  return flag.startsWith('--') ? name : (SHORT[name] ?? name);
}

export type RawValue = string | true;

/** Every value-taking flag as typed, by kebab-case long name, in order (a repeated flag has several). */
export function rawFlags(argv: string[]): Map<string, RawValue[]> {
  const out = new Map<string, RawValue[]>();
  const put = (name: string, v: RawValue) => {
    const list = out.get(name);
    if (list) list.push(v);
    else out.set(name, [v]);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') break;
    const m = /^(--?)([^=]+)(?:=([\s\S]*))?$/.exec(a);
    if (!m || a === '-' || /^-[0-9.]/.test(a)) continue;
    if (m[1] === '-' && m[2].length > 1) continue; // -abc: short booleans bundled; cac handles them
    const name = longName(`${m[1]}${m[2]}`);
    if (name.startsWith('no-') || BOOLEAN.has(name)) continue;
    if (m[3] !== undefined) put(name, m[3]);
    else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('-')) put(name, argv[++i]);
    else put(name, true);
  }
  return out;
}

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** cac's flags with every value-taking flag replaced by its text (an array when repeated). */
export function withRawValues(flags: Record<string, unknown>, raw: Map<string, RawValue[]>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...flags };
  for (const [name, values] of raw) {
    const v = values.length === 1 ? values[0] : values;
    // defineProperty: `--__proto__ x` is a flag named __proto__ (refused later), not a prototype.
    const set = (k: string) => Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    set(name);
    if (camel(name) !== name) set(camel(name));
    const short = Object.keys(SHORT).find((k) => SHORT[k] === name);
    if (short) set(short);
  }
  return out;
}
