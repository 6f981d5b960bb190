// Where a replica stands in a move (before, set aside, swapped), judged from the situation fact
// (facts/datadir/situation.ts). Every step of a move reads this first, so a rerun or a resumed run
// after a crash acts on the host's real state, never on what the last run believed.
import type { HostHandle } from '../../src/host.js';
import { type Layout, type PlaceState, type Situation, situation } from '../../facts/datadir/situation.js';

export type Phase = 'before' | 'set-aside' | 'swapped' | 'inconsistent';

/**
 * before:    the data directory holds the data (the old filesystem), no old copy set aside.
 * set-aside: the old directory is set aside and the data directory is absent, empty, or an
 *            unmounted mount point (mid-swap).
 * swapped:   the new volume is mounted at the data directory, the old copy set aside.
 */
export function phaseOf(s: Situation): { phase: Phase; why: string } {
  const dataEmpty = !s.data.exists || (s.data.isDir && !s.data.mountpoint && s.data.entries === 0 && !s.data.volume);
  if (s.data.exists && s.data.mountpoint && s.data.volume) {
    return s.old.exists
      ? { phase: 'swapped', why: 'the new volume is mounted at the data directory, the old copy is set aside' }
      : { phase: 'swapped', why: 'the new volume is mounted at the data directory (no old copy set aside: cleaned up)' };
  }
  if (s.old.exists && dataEmpty) return { phase: 'set-aside', why: 'the old directory is set aside and the data directory is empty' };
  if (s.data.exists && !s.data.volume && !s.old.exists) return { phase: 'before', why: 'the data directory holds the data, nothing set aside yet' };
  return { phase: 'inconsistent', why: `data: ${describe(s.data)}; old: ${describe(s.old)}` };
}

function describe(p: PlaceState): string {
  if (!p.exists) return 'absent';
  return `${p.isDir ? 'dir' : 'not a dir'}${p.mountpoint ? ', mount point' : ''}${p.volume ? ', new volume' : ''}, ${p.entries} entries`;
}

export function readSituation(host: HostHandle, l: Layout): Promise<Situation> {
  return host.fact(situation, l);
}
