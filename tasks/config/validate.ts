// Validate on the node, before anything is replaced: the full candidate configuration (a copy of
// /etc/clickhouse-server with the new files in it) is staged in a temp directory and read by the
// server's own configuration preprocessing (ConfigProcessor: the same merge of config.d/ and
// users.d/, includes and substitutions the server does at start-up and at each reload):
//   - `clickhouse extract-from-config --config-file … --key path --try` where the single
//     `clickhouse` binary exists (modern servers);
//   - on Debian's split 18.16 packages (no `clickhouse`, no `clickhouse-extract-from-config`)
//     `clickhouse-client --config-file …`, which loads its config file through the same
//     ConfigProcessor; it is pointed at 127.0.0.1:1 so that, once the configuration has been
//     read, it stops at "Connection refused" (exit 210) without talking to anything. A parse or
//     merge error stops it earlier with the parser's message ("Failed to merge config with …:
//     SAXParseException: Unclosed token …, line 1 column 8").
// Both roots are read: config.xml (config.d/) and users.xml (users.d/). Anything else — no
// validator on the node, an outcome chops cannot tell — refuses: a file is never written on the
// strength of a check that did not run.
import type { StepContext } from '../../src/engine/playbook.js';
import { ChopsError } from '../../src/errors.js';
import { raw } from '../../src/quote.js';
import { CONFIG_ROOT } from './files.js';
import { isYaml } from './sections.js';
import type { RenderedFile } from '../../templates/config/types.js';

const SCRIPT = String.raw`conf=${CONFIG_ROOT}
t=$(mktemp -d /tmp/chops-config-check.XXXXXX) || exit 90
trap 'rm -rf -- "$t"' EXIT
echo "stage $t"
cp -a -- "$conf/." "$t/" || exit 91
mkdir -p -- "$t/config.d" "$t/users.d" || exit 91
while read -r rel b64; do printf '%s' "$b64" | base64 -d > "$t/$rel" || exit 92; done
show() { printf '%s\n' "$1" | grep -v '^Include not found' | tail -n 15 | sed 's/^/| /'; }
if command -v clickhouse >/dev/null 2>&1 && clickhouse extract-from-config --help >/dev/null 2>&1; then
  echo "validator clickhouse extract-from-config"
  for root in config.xml users.xml; do
    out=$(clickhouse extract-from-config --config-file "$t/$root" --key path --try 2>&1); rc=$?
    echo "result $root $rc"; show "$out"
  done
elif command -v clickhouse-client >/dev/null 2>&1; then
  echo "validator clickhouse-client"
  for root in config.xml users.xml; do
    out=$(cd "$t" && HOME="$t" clickhouse-client --config-file "$t/$root" --host 127.0.0.1 --port 1 --compression 1 --query 'SELECT 1' 2>&1); rc=$?
    echo "result $root $rc"; show "$out"
  done
else
  echo "validator none"
fi`;

export interface Verdict {
  ok: boolean;
  validator: string;
  /** Per root (config.xml, users.xml): accepted, or the server's message. */
  roots: { root: string; ok: boolean; message: string }[];
}

/** Pure: the script's output → the verdict (exported for the unit tests). */
export function parseVerdict(stdout: string): Verdict {
  const stage = /^stage (\S+)$/m.exec(stdout)?.[1];
  const unstage = (s: string) => (stage ? s.split(stage).join(CONFIG_ROOT) : s);
  const validator = /^validator (.+)$/m.exec(stdout)?.[1] ?? 'none';
  const roots: Verdict['roots'] = [];
  const blocks = stdout.split(/^(?=result )/m).slice(1);
  for (const b of blocks) {
    const m = /^result (\S+) (\d+)\n?/.exec(b);
    if (!m) continue;
    const code = Number(m[2]);
    const text = unstage(
      b
        .slice(m[0].length)
        .split('\n')
        .filter((l) => l.startsWith('| '))
        .map((l) => l.slice(2))
        .join('\n'),
    ).trim();
    let ok: boolean;
    let message: string;
    if (validator === 'clickhouse extract-from-config') {
      ok = code === 0;
      message = ok ? 'accepted' : text || `exit ${code}`;
    } else {
      // Exit 210 (NETWORK_ERROR) with "Connection refused": the configuration was read in full.
      const refusedConnect = code === 210 && /Connection refused/.test(text);
      const configError = /Failed to (merge|preprocess|load) config|SAXParseException|XMLException|SyntaxException|Exception/i.test(text) && !refusedConnect;
      ok = refusedConnect;
      message = ok
        ? 'accepted'
        : configError
          ? errorLines(text)
          : `could not tell whether the server accepts it (exit ${code}): ${text.split('\n').slice(-3).join(' ') || 'no output'}`;
    }
    roots.push({ root: m[1], ok, message });
  }
  return { ok: validator !== 'none' && roots.length === 2 && roots.every((r) => r.ok), validator, roots };
}

/** The lines that carry the error (the client prints warnings first). */
function errorLines(text: string): string {
  const lines = text.split('\n').filter((l) => /Exception|Failed|error/i.test(l));
  return (lines.length ? lines : text.split('\n')).slice(-3).join(' ').trim();
}

/** Stage FILES on the node and have the server's preprocessing read them; throws when refused. */
export async function validateOnNode(ctx: StepContext<any>, files: RenderedFile[]): Promise<Verdict> {
  const stdin = `${files.map((f) => `${f.dir}/${f.name} ${Buffer.from(f.content, 'utf8').toString('base64')}`).join('\n')}\n`;
  // Read-only for the server and its files: everything happens in a temp dir removed on exit
  // (as the logrotate -d check of backup-install), so the plan validates too.
  const r = await ctx.host.probe({ nothrow: true, stdin, timeoutMs: 60_000 })`${raw(SCRIPT)}`;
  const node = ctx.host.name;
  if (r.code !== 0)
    throw new ChopsError(`${node}: could not stage the candidate configuration (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`, {
      hint: 'check free space in /tmp and that the SSH user may read /etc/clickhouse-server',
    });
  const v = parseVerdict(r.stdout);
  if (v.validator === 'none')
    throw new ChopsError(`${node}: no config validator on the node (neither \`clickhouse\` nor \`clickhouse-client\`): nothing is replaced unchecked`, {
      hint: 'install clickhouse-client on the node, then run config-push again',
    });
  const yaml = files.filter((f) => isYaml(f.name));
  if (yaml.length && v.validator !== 'clickhouse extract-from-config')
    throw new ChopsError(
      `${node}: ${yaml.map((f) => `${f.dir}/${f.name}`).join(', ')}: this server reads only .xml/.conf configuration files (no YAML before the single \`clickhouse\` binary of 21.x); it would ignore the file`,
      { hint: 'write the fragment as XML' },
    );
  const bad = v.roots.filter((x) => !x.ok);
  if (!v.ok) {
    throw new ChopsError(
      `${node}: the server's own config preprocessing (${v.validator}) refuses the new configuration — nothing was replaced:\n${bad.map((b) => `  ${b.root}: ${b.message}`).join('\n') || '  (no verdict)'}`,
      { hint: 'fix the file the message names, then start a new run: chops run config-push (a changed file is validated again)' },
    );
  }
  return v;
}
