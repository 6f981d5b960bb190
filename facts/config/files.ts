// The current content of the configuration files config-push manages on a node (one read-only
// command for all of them), plus the group the server's files must be readable by. Content
// travels as text, each line prefixed with '>' (not base64: the run log keeps a command's output,
// and only text lets the redactor mask a <password> in it), with the file's sha256 to prove the
// text was rebuilt exactly; a file that cannot be (bytes that are not UTF-8) counts as different.
import { defineFact } from '../../src/fact.js';
import { ChopsError } from '../../src/errors.js';
import { sh } from '../../src/quote.js';

export interface CurrentFile {
  path: string;
  exists: boolean;
  content?: string;
  /** "0640 root clickhouse" */
  stat?: string;
  /** sha256 of the bytes on the node. */
  sha?: string;
}

export interface CurrentConfig {
  files: CurrentFile[];
  /** Group owning the data directory: the server's own group (files are 0640 root:<group>). */
  serverGroup: string;
}

export function currentConfigCommand(arg: { paths: string[]; dataDir: string }): string {
  return sh`for f in ${arg.paths}; do if [ -f "$f" ]; then printf 'file %s %s %s\n' "$(stat -c '%a %U %G' -- "$f")" "$(sha256sum < "$f" | cut -c1-64)" "$f"; sed 's/^/>/' -- "$f"; if [ -z "$(tail -c1 -- "$f")" ]; then echo 'end nl'; else echo; echo 'end'; fi; else printf 'none %s\n' "$f"; fi; done; printf 'group %s\n' "$(stat -c %G -- ${arg.dataDir} 2>/dev/null)"`;
}

/** Pure: the command's output → the files, in the order asked. */
export function parseCurrentConfig(stdout: string, paths: string[]): CurrentConfig {
  const lines = stdout.split('\n');
  const files: CurrentFile[] = [];
  let serverGroup = '';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    let m: RegExpExecArray | null;
    if ((m = /^file (\d+ \S+ \S+) ([0-9a-f]{64}) (\/.*)$/.exec(l))) {
      const body: string[] = [];
      while (i + 1 < lines.length && lines[i + 1].startsWith('>')) body.push(lines[++i].slice(1));
      const nl = lines[++i] === 'end nl';
      const content = body.join('\n') + (nl && body.length ? '\n' : '');
      files.push({ path: m[3], exists: true, stat: m[1], sha: m[2], content });
    } else if ((m = /^none (\/.*)$/.exec(l))) files.push({ path: m[1], exists: false });
    else if ((m = /^group (.*)$/.exec(l))) serverGroup = m[1].trim();
  }
  const got = files.map((f) => f.path);
  if (got.length !== paths.length || got.some((p, i) => p !== paths[i]))
    throw new ChopsError(`could not read the current config files (asked for ${paths.length}, read ${got.length})`, {
      hint: 'check that the SSH user may read /etc/clickhouse-server (sudo: true in the inventory)',
    });
  return { files, serverGroup };
}

export const currentConfig = defineFact({
  name: 'current config files',
  command: (arg: { paths: string[]; dataDir: string }) => currentConfigCommand(arg),
  parse: ({ stdout }, arg) => parseCurrentConfig(stdout, arg.paths),
  timeoutMs: 30_000,
});
