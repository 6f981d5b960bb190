// The changes of a move that touch mounts and directories: mount the new volume at the staging
// point, set the old directory aside, mount the volume at the data directory from fstab, fix
// ownership, and the way back (rollback). Each reads the situation first and does only what is
// missing, so it can be repeated after a crash.
import type { HostHandle } from '../../src/host.js';
import type { Situation } from '../../facts/datadir/situation.js';
import { ChopsError } from '../../src/errors.js';
import { raw, sh } from '../../src/quote.js';
import { DISARM_MARK, type FstabEntry, fstab, fstabEntryFor, mountArgs, norm } from '../../facts/datadir/mounts.js';
import { type Layout, VOLUME_MARK } from '../../facts/datadir/situation.js';
import { phaseOf, readSituation } from './situation.js';

export interface Volume {
  source: string;
  fstype: string;
  options: string;
}

/** systemd regenerates mount units from fstab only on daemon-reload; hosts without systemd skip it. */
const DAEMON_RELOAD = `if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi`;

/** /etc/fstab with the data directory's line commented out (ARMED=false) or active again (pure). */
export function setArmed(text: string, dataDir: string, armed: boolean): { text: string; changed: boolean } {
  let changed = false;
  const lines = text.split('\n').map((line) => {
    const t = line.trim();
    const isMarked = t.startsWith(DISARM_MARK.trim());
    const body = isMarked ? t.slice(DISARM_MARK.trim().length).trim() : t;
    if (!body || (body.startsWith('#') && !isMarked)) return line;
    const f = body.split(/\s+/);
    if (f.length < 3 || norm(f[1].replace(/\\040/g, ' ')) !== norm(dataDir)) return line;
    if (armed && isMarked) {
      changed = true;
      return body;
    }
    if (!armed && !isMarked) {
      changed = true;
      return `${DISARM_MARK}${line}`;
    }
    return line;
  });
  return { text: lines.join('\n'), changed };
}

/** Arm or disarm the data directory's fstab line (a backup of the first version is kept). */
export async function armFstab(host: HostHandle, dataDir: string, armed: boolean): Promise<boolean> {
  const cur = await host.probe`cat /etc/fstab`;
  const next = setArmed(cur.stdout, dataDir, armed);
  if (!next.changed) return false;
  await host.$`[ -e /etc/fstab.chops-move-data.bak ] || cp -p /etc/fstab /etc/fstab.chops-move-data.bak`;
  await host.putFile('/etc/fstab', next.text, { mode: '0644', owner: 'root', group: 'root' });
  await host.runString('exec', DAEMON_RELOAD, { timeoutMs: 60_000 });
  if (armed) {
    // Nothing may rely on an fstab line that would not mount at boot.
    const v = await host.probe({ nothrow: true })`findmnt --verify --tab-file /etc/fstab`;
    if (v.code !== 0) {
      await host.putFile('/etc/fstab', cur.stdout, { mode: '0644', owner: 'root', group: 'root' });
      await host.runString('exec', DAEMON_RELOAD, { timeoutMs: 60_000 });
      throw new ChopsError(
        `${host.name}: /etc/fstab does not verify with the data directory's line active (put back as it was): ${(v.stdout + v.stderr).trim().split('\n').slice(-3).join(' | ')}`,
        {
          hint: 'fix the line for the data directory in /etc/fstab (findmnt --verify), then `chops resume`',
        },
      );
    }
  }
  return true;
}

/** The volume's fstab entry for the data directory (armed or disarmed by chops). */
export async function volumeEntry(host: HostHandle, dataDir: string): Promise<FstabEntry | undefined> {
  return fstabEntryFor(await host.fact(fstab), dataDir);
}

/**
 * Mount the volume at the staging point (unless it is there already) and mark it. A volume that
 * holds something that is not ours (no marker, not empty) is refused: it could be anything.
 */
export async function ensureStaging(host: HostHandle, l: Layout, vol: Volume): Promise<{ changed: boolean; note: string }> {
  const s = await readSituation(host, l);
  if (s.data.volume && s.data.mountpoint) return { changed: false, note: 'the volume is already mounted at the data directory' };
  if (s.staging.mountpoint && s.staging.volume) return { changed: false, note: `already mounted at ${l.staging}` };
  if (s.staging.mountpoint) {
    if (s.staging.entries > 0)
      throw new ChopsError(`${host.name}: ${l.staging} is a mount point holding ${s.staging.entries} entries that are not a chops copy`, {
        hint: `unmount it or choose another --staging`,
      });
  } else {
    if (s.staging.exists && s.staging.entries > 0)
      throw new ChopsError(`${host.name}: the staging point ${l.staging} is not empty`, { hint: 'choose another --staging, or empty it' });
    await host.$`mkdir -p -- ${l.staging}`;
    await host.$({ timeoutMs: 120_000 })`mount ${mountArgs(vol)} ${l.staging}`;
  }
  // What the mounted volume holds is known once it is mounted (a plan mounts nothing).
  const again = await host.whenApplied(undefined, () => readSituation(host, l));
  if (again && !again.staging.volume) {
    if (again.staging.entries > 0) {
      await host.$`umount -- ${l.staging}`;
      throw new ChopsError(
        `${host.name}: the new volume (${vol.source}) is not empty and was not prepared by chops (${again.staging.entries} entries); unmounted it again`,
        {
          hint: 'a volume for the data must be empty (lost+found aside); check that the fstab line names the right device',
        },
      );
    }
    await host.$`touch -- ${`${l.staging}/${VOLUME_MARK}`}`;
  }
  return { changed: true, note: `mounted ${vol.source} at ${l.staging}` };
}

export async function unmountStaging(host: HostHandle, l: Layout): Promise<boolean> {
  const s = await readSituation(host, l);
  if (!s.staging.mountpoint) return false;
  await host.$({ timeoutMs: 120_000 })`umount -- ${l.staging}`;
  return true;
}

/** mv DATA OLD: a rename on one filesystem (checked), so instant and never a copy. */
export async function setOldAside(host: HostHandle, l: Layout): Promise<{ changed: boolean; note: string }> {
  const s = await readSituation(host, l);
  const p = phaseOf(s);
  if (p.phase === 'set-aside' || p.phase === 'swapped') return { changed: false, note: `already set aside at ${l.oldDir}` };
  if (p.phase !== 'before') throw new ChopsError(`${host.name}: cannot set ${l.dataDir} aside: ${p.why}`, { hint: 'inspect the host by hand' });
  if (s.data.mountpoint)
    throw new ChopsError(`${host.name}: ${l.dataDir} is itself a mount point: it cannot be renamed`, {
      hint: 'move-data works on a data directory that lives on its parent filesystem',
    });
  const dev = await host.probe`stat -c %d -- $(dirname -- ${l.dataDir}) $(dirname -- ${l.oldDir})`;
  const [a, b] = dev.stdout.trim().split('\n');
  if (a !== b)
    throw new ChopsError(`${host.name}: ${l.oldDir} is on another filesystem than ${l.dataDir}: mv would copy instead of rename`, {
      hint: 'choose --old-dir next to the data directory',
    });
  // The rename is made durable before the step counts as done (sync -f commits the parent
  // filesystem's journal): after a power loss the host must be where the run log says it is,
  // or a resumed run would find the data directory back in place and refuse to mount over it.
  await host.$`mv -T -- ${l.dataDir} ${l.oldDir} && sync -f -- $(dirname -- ${l.oldDir})`;
  return { changed: true, note: `${l.dataDir} → ${l.oldDir}` };
}

/**
 * The empty mount point at the data directory: owned by root, mode 0755, and immutable
 * (chattr +i) — never the old directory's owner. Between the set-aside and the mount (and after
 * any later unmount) a clickhouse-server that starts there, at a boot inside this window (the
 * Debian unit runs as `clickhouse` and is enabled) or by hand, must not be able to create a fresh
 * empty data directory in it: it would serve no tables, and the resumed mount would find the
 * mount point not empty and refuse. Root-owned alone stops a server running as `clickhouse`;
 * immutable also stops root (a unit with `ExecStartPre=chown -R`). A power loss inside the
 * window: before the mkdir the directory is absent (the server cannot create it in the
 * root-owned parent and fails); after it, it is empty and immutable; either way nothing is
 * written and the rerun of this step mounts. The flag is synced before the step goes on: a power
 * cut in a QEMU guest (test/vm/full/move-data.test.ts) once kept the new directory but lost its
 * unsynced `chattr +i` (root ownership alone then kept the server out). The flag is set only while nothing is mounted
 * there (on a mounted directory chattr would flag the volume's root instead). A filesystem that
 * has no immutable flag (some overlay/tmpfs setups) keeps the root-owned directory, said in the
 * note.
 */
async function ensureMountPoint(host: HostHandle, dataDir: string): Promise<string> {
  const r = await host.$({ nothrow: true })`mountpoint -q -- ${dataDir} && exit 3
[ -d ${dataDir} ] || mkdir -m 0755 -- ${dataDir} || exit 4
[ "$(stat -c %u -- ${dataDir})" = 0 ] || chown root:root -- ${dataDir} || exit 4
if chattr +i -- ${dataDir} 2>/dev/null; then r=immutable; else r=root-owned; fi
sync -f -- ${dataDir} && echo $r`;
  // The command's answer exists only once it ran: a plan says what it would make.
  const done = await host.whenApplied(undefined, async () => r);
  if (!done) return 'mount point: root-owned, immutable';
  if (done.code === 3) return 'already a mount point';
  if (done.code !== 0) throw new ChopsError(`${host.name}: cannot create the mount point ${dataDir} (exit ${done.code}): ${done.stderr.trim()}`);
  return done.stdout.trim() === 'immutable' ? 'mount point root-owned and immutable' : 'mount point root-owned (this filesystem has no immutable flag)';
}

/** Undo ensureMountPoint's flag so the empty mount point can be removed (no-op when mounted or absent). */
const MUTABLE = (dir: string) => sh`if [ -d ${dir} ] && ! mountpoint -q -- ${dir}; then chattr -i -- ${dir} 2>/dev/null || true; fi`;

/** Empty immutable mount point; arm the fstab line; mount from fstab. */
export async function mountAtDataDir(host: HostHandle, l: Layout): Promise<{ changed: boolean; note: string }> {
  const real = await readSituation(host, l);
  // A plan recorded the set-aside without making it: this step sees what the set-aside leaves.
  const s = await host.whenApplied(afterSetAside(real), async () => real);
  // With the old data set aside, whatever is mounted at the data directory is not the original.
  if (s.data.mountpoint && (s.data.volume || s.old.exists)) {
    await armFstab(host, l.dataDir, true);
    return { changed: false, note: 'already mounted' };
  }
  if (!s.old.exists) throw new ChopsError(`${host.name}: ${l.oldDir} does not exist: refusing to mount over ${l.dataDir}`);
  if (s.data.exists && s.data.mountpoint)
    throw new ChopsError(`${host.name}: something that is not the new volume is mounted at ${l.dataDir}`, { hint: 'unmount it by hand' });
  if (s.data.exists && s.data.entries > 0)
    throw new ChopsError(`${host.name}: ${l.dataDir} is not empty (${s.data.entries} entries) while the old data is set aside`, {
      hint: 'something wrote there: inspect it',
    });
  const point = await ensureMountPoint(host, l.dataDir);
  host.note(`${point}; mounting the new volume at ${l.dataDir}`);
  await armFstab(host, l.dataDir, true);
  await host.$({ timeoutMs: 120_000 })`mount -- ${l.dataDir}`;
  const after = await host.whenApplied(undefined, () => readSituation(host, l));
  if (after && !(after.data.mountpoint && after.data.volume))
    throw new ChopsError(`${host.name}: after \`mount ${l.dataDir}\` the new volume is not there (no ${VOLUME_MARK} at its root)`, {
      hint: 'check the fstab line for the data directory',
    });
  return { changed: true, note: `mounted at ${l.dataDir} from /etc/fstab` };
}

/** The situation once the set-aside step has moved the data directory to the old one (unchanged when it has). */
function afterSetAside(s: Situation): Situation {
  if (s.old.exists || !s.data.exists) return s;
  return { ...s, old: s.data, data: { exists: false, isDir: false, mountpoint: false, volume: false, entries: 0 } };
}

/**
 * The new root gets the old root's owner; lost+found too (ClickHouse#90027); anything not owned
 * by that user (the runbook's `chown -R`) is changed, and only that.
 */
export async function fixOwnership(host: HostHandle, l: Layout): Promise<{ changed: boolean; note: string }> {
  // In a plan the data directory is not set aside yet: the owner to give is its owner today.
  const from = await host.whenApplied(l.dataDir, async () => l.oldDir);
  const own = (await host.probe`stat -c %U:%G -- ${from}`).stdout.trim();
  const [u, g] = own.split(':');
  const r = await host.$({
    timeoutMs: 3600_000,
  })`cd -- ${l.dataDir} && chown ${own} . && { [ ! -e lost+found ] || chown ${own} lost+found; } && find . \\( ! -user ${u} -o ! -group ${g} \\) -print -exec chown -h ${own} {} + | wc -l`;
  const n = Number(r.stdout.trim() || 0);
  return { changed: n > 0, note: n ? `${n} path(s) given to ${own}` : `everything owned by ${own}` };
}

/**
 * Rollback: put the replica back on its original directory, from wherever the move stopped.
 * Unmount the new volume from the data directory (and the staging point), move the old directory
 * back, disarm the fstab line (so neither a reboot nor RequiresMountsFor= mounts the new volume
 * over it). The caller starts the server.
 */
export async function restoreOriginal(host: HostHandle, l: Layout): Promise<string[]> {
  const did: string[] = [];
  let s = await readSituation(host, l);
  if (s.data.mountpoint && s.data.volume) {
    await host.$({ timeoutMs: 120_000 })`umount -- ${l.dataDir}`;
    did.push(`unmounted the new volume from ${l.dataDir}`);
    s = await readSituation(host, l);
  }
  if (s.staging.mountpoint) {
    await host.$({ timeoutMs: 120_000 })`umount -- ${l.staging}`;
    did.push(`unmounted ${l.staging}`);
  }
  if (await armFstab(host, l.dataDir, false)) did.push('fstab line for the data directory disarmed');
  if (s.old.exists) {
    if (s.data.exists) {
      if (s.data.mountpoint || s.data.entries > 0)
        throw new ChopsError(`${host.name}: rollback: ${l.dataDir} is not empty; the original data is still in ${l.oldDir}`, {
          hint: `move it back by hand: mv ${l.oldDir} ${l.dataDir}`,
        });
      await host.$`${raw(MUTABLE(l.dataDir))}; rmdir -- ${l.dataDir}`;
    }
    await host.$`mv -T -- ${l.oldDir} ${l.dataDir}`;
    did.push(`${l.oldDir} moved back to ${l.dataDir}`);
  }
  return did;
}

export { sh };
