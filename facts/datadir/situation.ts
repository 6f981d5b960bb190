// Where a replica's data really is: the data directory, the old directory set aside and the
// staging point — exists, directory, mount point, holds the new volume's marker, entries, owner.
// Every step of a move reads this first (tasks/datadir/situation.ts judges it).
import { sh } from '../../src/quote.js';
import { defineDatadirFact } from './define.js';

/**
 * A marker at the root of the new volume (excluded from every pass, so --delete keeps it): how a
 * later step or run recognises the volume wherever it is mounted (ext4 by UUID, LVM, a bind mount
 * in the lab) without remembering anything.
 */
export const VOLUME_MARK = '.chops-new-volume';

export interface Layout {
  dataDir: string;
  oldDir: string;
  staging: string;
}

export interface PlaceState {
  exists: boolean;
  isDir: boolean;
  mountpoint: boolean;
  /** The new volume's marker is at its root. */
  volume: boolean;
  /** Entries other than lost+found and the marker (0 = empty). */
  entries: number;
  owner?: string;
}

export interface Situation {
  data: PlaceState;
  old: PlaceState;
  staging: PlaceState;
}

const PLACE = `st() {
  if [ -e "$1" ] || [ -L "$1" ]; then
    d=0; [ -d "$1" ] && [ ! -L "$1" ] && d=1
    m=0; mountpoint -q "$1" 2>/dev/null && m=1
    v=0; [ -e "$1/${VOLUME_MARK}" ] && v=1
    n=0; [ "$d" = 1 ] && n=$(ls -A "$1" 2>/dev/null | grep -v -x -e lost+found -e ${VOLUME_MARK} | wc -l)
    echo "$2 exists=1 dir=$d mount=$m volume=$v entries=$n owner=$(stat -c %U:%G "$1")"
  else echo "$2 exists=0"; fi
}`;

export const situation = defineDatadirFact<Situation, Layout>({
  name: 'data directory situation',
  command: (l) => `${PLACE}\n${sh`st ${l.dataDir} data; st ${l.oldDir} old; st ${l.staging} staging`}`,
  parse: ({ stdout, code, stderr }) => {
    if (code !== 0) throw new Error(`exit ${code}: ${stderr.trim()}`);
    return parseSituation(stdout);
  },
  timeoutMs: 30_000,
});

export function parseSituation(out: string): Situation {
  const res: Partial<Situation> = {};
  for (const line of out.split('\n')) {
    const m = /^(data|old|staging) (.*)$/.exec(line.trim());
    if (!m) continue;
    const kv = Object.fromEntries(m[2].split(' ').map((p) => p.split('=') as [string, string]));
    res[m[1] as keyof Situation] = {
      exists: kv.exists === '1',
      isDir: kv.dir === '1',
      mountpoint: kv.mount === '1',
      volume: kv.volume === '1',
      entries: Number(kv.entries ?? 0),
      owner: kv.owner,
    };
  }
  for (const k of ['data', 'old', 'staging'] as const) if (!res[k]) throw new Error(`no "${k}" line in ${JSON.stringify(out.slice(0, 200))}`);
  return res as Situation;
}
