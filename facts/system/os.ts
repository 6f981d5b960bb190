// Operating system and kernel: /etc/os-release's PRETTY_NAME (uname -s where there is none) and uname -r.
import { defineFact } from '../../src/fact.js';

export interface OsInfo {
  os: string;
  kernel: string;
}

export function parseOs(stdout: string): OsInfo {
  const [os = '', kernel = ''] = stdout.split('\n').map((l) => l.trim());
  return { os, kernel };
}

export const osInfo = defineFact({
  name: 'os',
  command: () => `( . /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" ) || uname -s; uname -r`,
  parse: ({ stdout }) => parseOs(stdout),
});
