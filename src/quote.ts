// The one POSIX quoting function. Every value interpolated into a remote command goes through
// shq(): single quotes make the shell take everything literally, and an embedded single quote
// is closed, escaped and reopened ('\''). Works in sh, dash, bash and busybox alike, unlike
// zx's quote() which emits bash-only $'...'.

/** Quote one value as a single literal shell word. */
export function shq(value: string | number | boolean): string {
  const s = String(value);
  if (s.includes('\0')) throw new TypeError('a shell argument cannot contain a NUL byte');
  // Safe words need no quotes; keeps logs readable. A leading '-' is still safe to the shell
  // (it is the command's job to use `--`), but '=' and '~' and '#' at the start are not.
  if (s !== '' && /^[A-Za-z0-9_@%+,./:-]+$/.test(s) && !/^[-~#]/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A value that is inserted into a command unquoted (a flag set chosen by code, not by input). */
export class Raw {
  constructor(readonly text: string) {}
}
export const raw = (text: string): Raw => new Raw(text);

type Arg = string | number | boolean | Raw | ReadonlyArray<string | number | boolean | Raw>;

/** Template tag: builds a command string, quoting every interpolated value (arrays become several words). */
export function sh(strings: TemplateStringsArray, ...values: Arg[]): string {
  let out = strings[0];
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1];
  });
  return out;
}

function render(v: Arg): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return v.map((x) => render(x as Arg)).join(' ');
  return shq(v as string | number | boolean);
}
