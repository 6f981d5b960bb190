// Keeps secrets out of run logs and run state: every registered secret, plus the usual shapes
// of credentials in commands, configs and HTTP headers, becomes `***`.

export const MASK = '***';

// A shell word as shq() and hand-written commands produce it: quoted parts, escapes, plain chars.
const SHELL_WORD = String.raw`(?:'[^']*'|"(?:[^"\\\n]|\\.)*"|\\.|[^\s'"\\;&|<>()])+`;
// Names that mark a credential. Bounded repetitions keep every pattern linear on big outputs.
const KEY = String.raw`[\w.-]{0,64}?(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)[\w.-]{0,64}`;

// Every KEY-based rule needs one of these (lower-case) in the text: most texts (command output,
// notes) have none, and then those rules are skipped without running a regex.
const KEY_WORDS = ['passw', 'secret', 'token', 'key'];

interface Rule {
  /** Cheap precheck: skip the regex when none of these (lower-case) substrings occur. */
  hints: string[];
  /** And when none of these occur either (when given). */
  needs?: string[];
  re: RegExp;
  replace: (substring: string, ...groups: string[]) => string;
}

const RULES: Rule[] = [
  // URL credentials: scheme://user:pass@host
  {
    hints: ['://'],
    re: /\b([a-z][a-z0-9+.-]{0,30}:\/\/[^\s:/@'"]{0,256}:)([^\s@/'"]{1,512})@/gi,
    replace: (_m, pre) => `${pre}${MASK}@`,
  },
  // HTTP auth headers, including ClickHouse's X-ClickHouse-Key.
  {
    hints: ['authorization', 'x-clickhouse-key'],
    re: /\b(authorization\s*[:=]\s*(?:(?:basic|bearer|digest|token|negotiate)\s+)?|x-clickhouse-key\s*[:=]\s*)("[^"\n]*"|'[^'\n]*'|[^\s'"]+)/gi,
    replace: (_m, pre) => `${pre}${MASK}`,
  },
  // XML configs (users.xml): <password>x</password>, <password_sha256_hex>…</password_sha256_hex>
  {
    hints: ['<'],
    needs: KEY_WORDS,
    re: /<((?:[\w-]{0,64}?)(?:password|secret|token)[\w-]{0,64})>([^<]*)<\/\1>/gi,
    replace: (_m, tag) => `<${tag}>${MASK}</${tag}>`,
  },
  // SQL: CREATE/ALTER USER … IDENTIFIED [WITH method] BY 'x'
  {
    hints: ['identified'],
    re: /\b(identified\s+(?:with\s+\w{1,64}\s+)?by\s+)('(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")/gi,
    replace: (_m, pre) => `${pre}${MASK}`,
  },
  // Flags: --password X, --password=X, --secret 'a b'
  {
    hints: ['--'],
    needs: KEY_WORDS,
    re: new RegExp(String.raw`(--${KEY}(?:=|[ \t]+))(${SHELL_WORD})`, 'gi'),
    replace: (_m, pre) => `${pre}${MASK}`,
  },
  // Assignments: password=x, CLICKHOUSE_PASSWORD='x', ?password=x&…
  {
    hints: ['='],
    needs: KEY_WORDS,
    re: new RegExp(String.raw`(^|[^\w.-])(${KEY}=)(${SHELL_WORD})`, 'gim'),
    replace: (_m, lead, pre, value: string) => (value.startsWith(MASK) ? `${lead}${pre}${value}` : `${lead}${pre}${MASK}`),
  },
  // JSON anywhere on a line: "password": "x"
  {
    hints: ['"'],
    needs: KEY_WORDS,
    re: new RegExp(String.raw`("${KEY}"[ \t]*:[ \t]*)"(?:[^"\\\n]|\\.)*"`, 'gi'),
    replace: (_m, pre) => `${pre}"${MASK}"`,
  },
  // YAML/JSON: `password: x`, `  PASSWORD: "x"`, `"password": "x",`
  {
    hints: [':'],
    needs: KEY_WORDS,
    re: new RegExp(String.raw`^([ \t]*(?:-[ \t]+)?["']?${KEY}["']?[ \t]*:[ \t]+)([^\n]*)$`, 'gim'),
    replace: (m, pre, rest: string) => maskYamlValue(m, pre, rest),
  },
];

/**
 * One case-insensitive test that no rule can apply: every rule needs its `needs` words (or, when
 * it has none, its `hints`) in the text, so a text with none of all those skips the lower-casing
 * and the rules (most command output, notes and step records: thousands of texts per run).
 */
const ANY_RULE = new RegExp([...new Set(RULES.flatMap((r) => r.needs ?? r.hints))].map((w) => w.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'i');

function maskYamlValue(whole: string, pre: string, rest: string): string {
  const value = rest.replace(/[ \t]+$/, '');
  if (value === '' || value.startsWith(MASK) || /^[|>&*!{[]/.test(value)) return whole; // block scalars, anchors, nested
  if (/[_-](?:file|path|env)["']?[ \t]*:[ \t]*$/i.test(pre)) return whole; // `password_file: /etc/…` names where, not what
  const q = value[0];
  if (q === '"' || q === "'") {
    // Quoted: mask up to the closing quote, keep what follows (a JSON comma, a comment).
    let i = 1;
    while (i < value.length && value[i] !== q) i += q === '"' && value[i] === '\\' ? 2 : 1;
    if (i >= value.length) return `${pre}${MASK}`;
    return `${pre}${q}${MASK}${q}${value.slice(i + 1)}`;
  }
  // Plain scalar: a comment starts at whitespace + '#'; a trailing comma is JSON punctuation.
  const hash = /[ \t]#/.exec(value);
  const body = hash ? value.slice(0, hash.index) : value;
  const tailPart = hash ? value.slice(hash.index) : '';
  return `${pre}${MASK}${body.endsWith(',') ? ',' : ''}${tailPart}`;
}

/** Replaces registered secrets and credential-shaped text with `***`. */
export class Redactor {
  private secrets: string[] = [];
  private seen = new Set<string>();

  /** Register a secret (ignored when shorter than 3 characters). Its shell-quoted and URL-encoded forms are masked too. */
  add(secret: string | undefined | null): void {
    if (typeof secret !== 'string') return;
    const variants = new Set<string>([secret, secret.trim()]);
    // Inside shq('…') a single quote becomes '\'' so the raw secret never appears in the command.
    if (secret.includes("'")) variants.add(secret.replace(/'/g, `'\\''`));
    try {
      variants.add(encodeURIComponent(secret));
    } catch {
      /* lone surrogates */
    }
    variants.add(JSON.stringify(secret).slice(1, -1));
    let changed = false;
    for (const v of variants) {
      if (v.length < 3 || this.seen.has(v)) continue;
      this.seen.add(v);
      this.secrets.push(v);
      changed = true;
    }
    // Longest first, so a secret that contains another is masked whole.
    if (changed) this.secrets.sort((a, b) => b.length - a.length);
  }

  /** Number of distinct strings being masked (variants included). */
  get size(): number {
    return this.secrets.length;
  }

  redact(text: string): string {
    if (!text) return text;
    let out = text;
    for (const s of this.secrets) {
      if (out.includes(s)) out = out.split(s).join(MASK);
    }
    if (!ANY_RULE.test(out)) return out;
    const lower = out.toLowerCase();
    for (const rule of RULES) {
      if (!rule.hints.some((h) => lower.includes(h))) continue;
      if (rule.needs && !rule.needs.some((h) => lower.includes(h))) continue;
      rule.re.lastIndex = 0;
      out = out.replace(rule.re, rule.replace as (substring: string, ...args: any[]) => string);
    }
    return out;
  }
}
