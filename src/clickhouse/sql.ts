// THE one place values get into SQL. ClickHouse 18.16 has no query parameters (`param_x` is an
// unknown setting there), so every value is inlined as a literal, escaped here and nowhere else.
//
//   sql`SELECT count() FROM system.replicas WHERE database = ${db} AND queue_size > ${n}`
//   sql`SELECT count() FROM ${sql.ident(db)}.${sql.ident(table)}`
//
// Strings become single-quoted literals with backslash escapes (the only form every ClickHouse
// version parses the same way); numbers stay numbers; identifiers need sql.ident().

/**
 * A ClickHouse single-quoted string literal for S.
 * Escapes `\` and `'`, and writes every control character (U+0000–U+001F, U+007F) as an escape
 * so a literal never spans lines or carries a raw NUL. Other characters (all of Unicode) are
 * sent as UTF-8. A string with a lone surrogate cannot be sent as UTF-8 and is refused.
 */
export function sqlString(s: string): string {
  return `'${escapeBody(assertString(s, 'a string literal'), "'")}'`;
}

/** A backquoted ClickHouse identifier (database, table, column name), e.g. `lab`.`events`. */
export function sqlIdent(name: string): string {
  const n = assertString(name, 'an identifier');
  if (n === '') throw new TypeError('an SQL identifier cannot be empty');
  return `\`${escapeBody(n, '`')}\``;
}

/** SQL text that is inserted as is (built by code, never from input): see sql.raw / sql.ident. */
export class SqlFragment {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type SqlValue = string | number | bigint | boolean | null | Date | SqlFragment | ReadonlyArray<string | number | bigint | boolean | null | Date>;

interface SqlTag {
  (strings: TemplateStringsArray, ...values: SqlValue[]): string;
  /** An identifier to interpolate: sql`SELECT * FROM ${sql.ident(db)}.${sql.ident(t)}`. */
  ident(name: string): SqlFragment;
  /** Trusted SQL text chosen by code (a column list, ASC/DESC); never pass input here. */
  raw(text: string): SqlFragment;
}

/**
 * Template tag: the SQL text with every interpolated value inlined as a literal.
 * strings → '…' (sqlString); finite numbers and bigints → as written; booleans → 1/0;
 * null → NULL; Date → toDateTime(<unix seconds>) (time-zone independent);
 * arrays → a parenthesised list for IN, e.g. ('a', 'b') (an empty array is refused: `IN ()` is
 * a syntax error, and silently matching nothing hides bugs); SqlFragment → its text.
 */
export const sql: SqlTag = Object.assign(
  (strings: TemplateStringsArray, ...values: SqlValue[]): string => {
    let out = strings[0];
    values.forEach((v, i) => {
      out += renderValue(v) + strings[i + 1];
    });
    return out;
  },
  {
    ident: (name: string) => new SqlFragment(sqlIdent(name)),
    raw: (text: string) => new SqlFragment(text),
  },
);

/** One value as an SQL literal (what sql`` does to each interpolation). */
export function sqlLiteral(v: SqlValue): string {
  return renderValue(v);
}

function renderValue(v: SqlValue): string {
  if (v instanceof SqlFragment) return v.text;
  if (Array.isArray(v)) {
    if (v.length === 0) throw new TypeError('an empty list cannot be inlined into SQL (IN () is a syntax error): handle the empty case in code');
    return `(${v.map((x) => renderScalar(x)).join(', ')})`;
  }
  return renderScalar(v as Exclude<SqlValue, SqlFragment | ReadonlyArray<unknown>>);
}

function renderScalar(v: string | number | bigint | boolean | null | Date): string {
  if (v === null) return 'NULL';
  switch (typeof v) {
    case 'string':
      return sqlString(v);
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`cannot inline ${v} into SQL`);
      // Negative numbers in parentheses: `x - ${n}` must not become `x --1` (a comment).
      return v < 0 || Object.is(v, -0) ? `(${String(v)})` : String(v);
    case 'bigint':
      return v < 0n ? `(${v.toString()})` : v.toString();
    case 'boolean':
      return v ? '1' : '0';
    default:
      break;
  }
  if (v instanceof Date) {
    const t = v.getTime();
    if (!Number.isFinite(t)) throw new TypeError('cannot inline an invalid Date into SQL');
    return `toDateTime(${Math.floor(t / 1000)})`;
  }
  throw new TypeError(`cannot inline a value of type ${Object.prototype.toString.call(v)} into SQL`);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function assertString(s: unknown, what: string): string {
  if (typeof s !== 'string') throw new TypeError(`${what} must be a string, got ${typeof s}`);
  if (LONE_SURROGATE.test(s)) throw new TypeError(`${what} contains a lone UTF-16 surrogate and cannot be sent as UTF-8`);
  return s;
}

const NAMED: Record<string, string> = {
  '\0': '\\0',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\v': '\\v',
  '\f': '\\f',
  '\r': '\\r',
  '\x07': '\\a',
};

// Backslash, the quote character, and every C0 control character plus DEL.
const SPECIAL = /[\\'`\x00-\x1f\x7f]/g;

function escapeBody(s: string, quote: "'" | '`'): string {
  return s.replace(SPECIAL, (c) => {
    if (c === '\\') return '\\\\';
    if (c === "'" || c === '`') return c === quote ? `\\${c}` : c;
    return NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}
