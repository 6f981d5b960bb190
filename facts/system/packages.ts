// The ClickHouse packages of a Debian/Ubuntu host: which are installed at which version
// (dpkg-query), which are held (apt-mark showhold), and which versions the configured
// repositories offer (apt-cache madison). One command, three sections, pure parsers.
//
// Debian's own packaging (18.16) splits the server into clickhouse-server (the server's main
// program), clickhouse-common (libclickhouse.so, the engine itself) and clickhouse-client; the
// upstream packages into clickhouse-common-static (the one binary), clickhouse-server,
// clickhouse-client (+ -dbg, keeper). An upgrade moves every installed one of them together, to
// the same version (their `Depends: … (= version)` require it).
import { defineFact } from '../../src/fact.js';
import { ChopsError } from '../../src/errors.js';
import { shq } from '../../src/quote.js';

/** The packages of a ClickHouse server installation, in install order (libraries first). */
export const CLICKHOUSE_PACKAGES = [
  'clickhouse-common',
  'clickhouse-common-static',
  'clickhouse-common-static-dbg',
  'clickhouse-server',
  'clickhouse-client',
  'clickhouse-keeper',
] as const;

export interface InstalledPackage {
  name: string;
  version: string;
  /**
   * dpkg's status abbreviation: wanted (`i` install, `h` hold, …), status (`i` installed, `u`
   * unpacked, `f` half-configured, `h` half-installed, `w`/`t` triggers) and an error flag (`R`).
   */
  state: string;
}

/** Installed and configured, whatever is wanted of it (`ii`, `hi`): not a half-done dpkg run. */
export function isConfigured(state: string): boolean {
  return state[1] === 'i' && (state[2] ?? ' ').trim() === '';
}

export interface PackageFacts {
  /** Packages dpkg knows as installed (any `?i`/half state), in CLICKHOUSE_PACKAGES order. */
  installed: InstalledPackage[];
  /** Held packages (apt-mark showhold), ClickHouse's only. */
  held: string[];
  /** Versions the repositories offer, per package (apt-cache madison), newest first as apt lists them. */
  available: Record<string, string[]>;
}

/** The fact's command; without AVAILABLE the (slower) repository query is left out. */
export function packagesCommand(opts: { available?: boolean } = {}): string {
  const names = CLICKHOUSE_PACKAGES.map(shq).join(' ');
  return [
    'echo @installed',
    `dpkg-query -W -f '\${Package}\\t\${Version}\\t\${db:Status-Abbrev}\\n' ${names} 2>/dev/null || true`,
    'echo @held',
    'apt-mark showhold 2>/dev/null || true',
    'echo @available',
    // madison lists what the sources offer (never a version known only from /var/lib/dpkg/status)
    ...(opts.available === false ? [] : [`apt-cache madison ${names} 2>/dev/null || true`]),
  ].join('\n');
}

/** Split output into `@section` blocks. */
function sections(stdout: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let cur: string[] | undefined;
  for (const line of stdout.split('\n')) {
    const m = /^@(\w+)$/.exec(line.trim());
    if (m) {
      cur = out[m[1]] = [];
      continue;
    }
    if (cur && line.trim()) cur.push(line);
  }
  return out;
}

/** dpkg-query lines `name\tversion\tii ` → installed packages (states other than not-installed). */
export function parseInstalled(lines: string[]): InstalledPackage[] {
  const found: InstalledPackage[] = [];
  for (const line of lines) {
    const [name, version, abbrev] = line.split('\t');
    const state = (abbrev ?? '').trim();
    // `un`/`pn` = known but not installed; `rc` = removed, config files left
    if (!name || !version || !state || state[1] === 'n' || state[1] === 'c') continue;
    found.push({ name, version, state });
  }
  const order = (n: string) => (CLICKHOUSE_PACKAGES as readonly string[]).indexOf(n);
  return found.sort((a, b) => order(a.name) - order(b.name));
}

/** apt-cache madison lines ` pkg | version | source` → versions per package. */
export function parseMadison(lines: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of lines) {
    const [name, version] = line.split('|').map((s) => s.trim());
    if (!name || !version) continue;
    const list = (out[name] ??= []);
    if (!list.includes(version)) list.push(version);
  }
  return out;
}

export function parsePackages(stdout: string): PackageFacts {
  const s = sections(stdout);
  if (!s.installed || !s.held || !s.available) throw new ChopsError(`cannot read the package state: unexpected output ${JSON.stringify(stdout.slice(0, 200))}`);
  const known = new Set<string>(CLICKHOUSE_PACKAGES);
  return {
    installed: parseInstalled(s.installed),
    held: s.held.map((l) => l.trim()).filter((n) => known.has(n)),
    available: parseMadison(s.available),
  };
}

export const clickhousePackages = defineFact({
  name: 'clickhouse packages',
  command: () => packagesCommand(),
  parse: ({ stdout }) => parsePackages(stdout),
  timeoutMs: 60_000,
});

/** The same without what the repositories offer (`available` is empty): installed and held only, quicker. */
export const installedClickhousePackages = defineFact({
  name: 'installed clickhouse packages',
  command: () => packagesCommand({ available: false }),
  parse: ({ stdout }) => parsePackages(stdout),
  timeoutMs: 30_000,
});

// ---------------------------------------------------------------- Debian version order

/** dpkg's order of one character in the non-digit parts: `~` before everything, letters before the rest. */
function charOrder(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // non-digit prefix
    while ((i < a.length && !/\d/.test(a[i])) || (j < b.length && !/\d/.test(b[j]))) {
      const ca = i < a.length && !/\d/.test(a[i]) ? a[i] : undefined;
      const cb = j < b.length && !/\d/.test(b[j]) ? b[j] : undefined;
      const d = charOrder(ca) - charOrder(cb);
      if (d !== 0) return d < 0 ? -1 : 1;
      if (ca !== undefined) i++;
      if (cb !== undefined) j++;
    }
    // digit run
    let na = '';
    let nb = '';
    while (i < a.length && /\d/.test(a[i])) na += a[i++];
    while (j < b.length && /\d/.test(b[j])) nb += b[j++];
    const x = BigInt(na || '0');
    const y = BigInt(nb || '0');
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function splitVersion(v: string): { epoch: bigint; upstream: string; revision: string } {
  const colon = v.indexOf(':');
  const epoch = colon > 0 && /^\d+$/.test(v.slice(0, colon)) ? BigInt(v.slice(0, colon)) : 0n;
  const rest = colon > 0 ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf('-');
  return dash > 0 ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) } : { epoch, upstream: rest, revision: '' };
}

/** Debian version comparison (dpkg --compare-versions): negative, 0 or positive. */
export function compareDebianVersions(a: string, b: string): number {
  const x = splitVersion(a);
  const y = splitVersion(b);
  if (x.epoch !== y.epoch) return x.epoch < y.epoch ? -1 : 1;
  return compareFragment(x.upstream, y.upstream) || compareFragment(x.revision, y.revision);
}

/**
 * The ClickHouse release a package version carries, as the server's version() reports it:
 * epoch, Debian revision and suffixes such as `+ds` dropped (`18.16.1+ds-7.3+b2` → `18.16.1`,
 * `24.8.4.13` → `24.8.4.13`). Undefined when the version has no leading number.
 */
export function releaseOf(version: string): string | undefined {
  return /^\d+(?:\.\d+)*/.exec(splitVersion(version).upstream)?.[0];
}

/**
 * The repository version an operator's `--version` means: the exact package version when a
 * repository offers it, else the only offered version whose release is that (`18.16.1`,
 * `24.8.4.13`). Several candidates → ambiguous (the operator names one of them).
 */
export function resolveVersion(wanted: string, offered: string[]): { version: string } | { error: string } {
  if (offered.includes(wanted)) return { version: wanted };
  const same = offered.filter((v) => releaseOf(v) === wanted);
  if (same.length === 1) return { version: same[0] };
  if (same.length > 1) return { error: `${wanted} matches ${same.length} package versions (${same.join(', ')}): give the exact one` };
  return {
    error: offered.length
      ? `not offered by the repositories (they offer ${offered.join(', ')})`
      : 'not offered by any repository (apt-cache madison lists nothing)',
  };
}
