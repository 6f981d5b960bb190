// The paths in ClickHouse's configuration that decide what a data-directory move must carry or
// must not break (move-data.md: path, tmp_path, user_files_path, access_control_path,
// format_schema_path, Keeper's log/snapshot paths, the disks of storage_configuration).
// Read from the server's preprocessed config when it exists (what the server really uses),
// otherwise from config.xml followed by config.d/*.xml (later files override, as the server merges).
import { sh } from '../../src/quote.js';
import { defineDatadirFact } from './define.js';

export interface ConfigPaths {
  /** Which file(s) were read. */
  sources: string[];
  path?: string;
  tmpPath?: string;
  userFilesPath?: string;
  accessControlPath?: string;
  formatSchemaPath?: string;
  keeperLogPath?: string;
  keeperSnapshotPath?: string;
  /** storage_configuration disks that have their own path (the default disk uses `path`). */
  disks: Array<{ name: string; path: string }>;
}

export const configPaths = defineDatadirFact<ConfigPaths, { dataDir: string; configDir?: string }>({
  name: 'ClickHouse config paths',
  command: ({ dataDir, configDir = '/etc/clickhouse-server' }) =>
    sh`for f in ${`${dataDir.replace(/\/+$/, '')}/preprocessed_configs/config.xml`} ${`${configDir}/config-preprocessed.xml`}; do
  if [ -r "$f" ]; then printf '==> %s\\n' "$f"; cat -- "$f"; exit 0; fi
done
[ -r ${`${configDir}/config.xml`} ] || { echo "no ClickHouse config in ${configDir}" >&2; exit 4; }
for f in ${`${configDir}/config.xml`} ${configDir}/config.d/*.xml; do
  [ -r "$f" ] && { printf '==> %s\\n' "$f"; cat -- "$f"; }
done; exit 0`,
  parse: ({ stdout, code, stderr }) => {
    if (code !== 0) throw new Error(`cannot read the ClickHouse configuration (exit ${code}): ${stderr.trim()}`);
    return parseConfigPaths(stdout);
  },
});

/** Split `==> FILE` sections and merge them in order (a later file's value wins). */
export function parseConfigPaths(out: string): ConfigPaths {
  const sections = out.split(/^==> (.+)$/m);
  const res: ConfigPaths = { sources: [], disks: [] };
  const disks = new Map<string, string>();
  for (let i = 1; i < sections.length; i += 2) {
    res.sources.push(sections[i].trim());
    const root = parseXml(sections[i + 1] ?? '');
    const v = (...p: string[]) => textAt(root, p);
    res.path = v('path') ?? res.path;
    res.tmpPath = v('tmp_path') ?? res.tmpPath;
    res.userFilesPath = v('user_files_path') ?? res.userFilesPath;
    res.accessControlPath = v('access_control_path') ?? v('user_directories', 'local_directory', 'path') ?? res.accessControlPath;
    res.formatSchemaPath = v('format_schema_path') ?? res.formatSchemaPath;
    res.keeperLogPath = v('keeper_server', 'log_storage_path') ?? res.keeperLogPath;
    res.keeperSnapshotPath = v('keeper_server', 'snapshot_storage_path') ?? res.keeperSnapshotPath;
    const d = childAt(root, ['storage_configuration', 'disks']);
    for (const disk of d?.children ?? []) {
      const p = textAt(disk, ['path']);
      if (p) disks.set(disk.name, p);
    }
  }
  res.disks = [...disks].map(([name, path]) => ({ name, path }));
  return res;
}

// ------------------------------------------------------------------ a minimal XML reader
// Enough for ClickHouse configs: elements, text, comments, CDATA, attributes ignored. No entities
// beyond the five predefined ones (paths do not use others).

interface Node {
  name: string;
  text: string;
  children: Node[];
}

export function parseXml(xml: string): Node {
  const root: Node = { name: '#root', text: '', children: [] };
  const stack: Node[] = [root];
  const s = xml
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<\?[\s\S]*?\?>/g, '')
    .replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, (_, t: string) => escapeText(t));
  const re = /<(\/?)([A-Za-z_][\w.:-]*)([^>]*?)(\/?)>|([^<]+)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const top = stack[stack.length - 1];
    if (m[5] !== undefined) {
      top.text += unescapeXml(m[5]);
      continue;
    }
    const [, close, name, , selfClose] = m;
    if (close) {
      if (stack.length > 1 && top.name === name) stack.pop();
      continue;
    }
    const node: Node = { name, text: '', children: [] };
    top.children.push(node);
    if (!selfClose) stack.push(node);
  }
  // A document's single element (<yandex>/<clickhouse>) is the config root.
  return root.children.length === 1 ? root.children[0] : root;
}

function childAt(n: Node, path: string[]): Node | undefined {
  let cur: Node | undefined = n;
  for (const p of path) cur = cur?.children.filter((c) => c.name === p).pop();
  return cur;
}

function textAt(n: Node, path: string[]): string | undefined {
  const c = childAt(n, path);
  const t = c?.text.trim();
  return c && c.children.length === 0 && t ? t : undefined;
}

const unescapeXml = (t: string) =>
  t
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
const escapeText = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
