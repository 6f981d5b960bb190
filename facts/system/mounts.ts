// What is mounted where: /proc/self/mounts (the kernel's view, not fstab's wishes).
import { defineFact } from '../../src/fact.js';

export interface Mount {
  source: string;
  target: string;
  fstype: string;
  options: string;
}

/** /proc/mounts escapes space, tab, newline and backslash as octal (\040). */
export function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMounts(stdout: string): Mount[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [source = '', target = '', fstype = '', options = ''] = l.split(' ');
      return { source: unescapeMount(source), target: unescapeMount(target), fstype, options };
    });
}

export const mounts = defineFact({
  name: 'mounts',
  command: () => 'cat /proc/self/mounts',
  parse: ({ stdout }) => parseMounts(stdout),
});
