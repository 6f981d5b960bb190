// The fstab entry for the data directory, by UUID. Editing is careful because a wrong line can
// keep a host from booting: the new table is written next to the old one, checked with
// `findmnt --verify`, the old one is backed up, the new one renamed into place (atomic) and
// checked again (the backup comes back if that fails). Only our line changes: comments and
// other lines are kept byte for byte (facts/disk/fstab.ts).
//
// Options chops always adds, and why:
//   nofail                        a missing volume must not send the host to emergency mode
//                                 (no sshd: nobody can log in to fix it). The server is kept off
//                                 an empty directory by the RequiresMountsFor= drop-in instead.
//   x-systemd.device-timeout=30s  how long boot waits for the device (default 90 s): a local LV
//                                 appears in seconds; a missing one fails the mount (and with it
//                                 the server) after 30 s rather than 90.
//   noauto (until the swap)       before the data is on the volume, a reboot must not mount the
//                                 empty volume over the old directory; `mount <dir>` still works.
import type { HostHandle } from '../../src/host.js';
import type { HostMemory, Step } from '../../src/engine/playbook.js';
import { ChopsError } from '../../src/errors.js';
import { fstab, entriesFor, formatEntry, options, renderFstab, upsertEntry } from '../../facts/disk/fstab.js';
import { fstabVerify } from '../../facts/disk/findmnt.js';
import { blkidProbe } from '../../facts/disk/blkid.js';
import { MEM, type DiskParams } from './params.js';
import { UUID_PLACEHOLDER } from './filesystem.js';
import { volumeDevice } from './volume.js';

export const SAFETY_OPTIONS = ['nofail', 'x-systemd.device-timeout=30s'];

/** Pure: the fstab line for the data directory. */
export function dataDirLine(uuid: string, dataDir: string, userOptions: string, staged: boolean): string {
  const opts = [...options(userOptions), ...SAFETY_OPTIONS.filter((o) => !options(userOptions).some((u) => u.split('=')[0] === o.split('=')[0]))];
  const withAuto = staged ? [...opts.filter((o) => o !== 'noauto'), 'noauto'] : opts.filter((o) => o !== 'noauto');
  return formatEntry({ spec: `UUID=${uuid}`, file: dataDir, vfstype: 'ext4', mntops: withAuto.join(','), freq: '0', passno: '2' });
}

/**
 * Make /etc/fstab carry LINE as the entry of its mount point (others untouched). Returns false
 * when it is already there. Refuses to replace an entry that mounts another device there.
 */
export async function writeFstabLine(
  host: HostHandle,
  line: string,
  uuid: string,
  stamp: string,
): Promise<{ changed: boolean; backup?: string; warnings: string[] }> {
  const cur = await host.fact(fstab);
  const dir = line.split(' ')[1];
  const other = entriesFor(cur, dir).filter((l) => l.entry!.spec !== `UUID=${uuid}`);
  if (other.length) {
    throw new ChopsError(`${host.name}: /etc/fstab already mounts something else at ${dir}: ${other.map((l) => l.raw.trim()).join(' | ')}`, {
      hint: 'the data directory is already on its own volume; remove that line by hand only if it is stale',
    });
  }
  const next = upsertEntry(cur, line);
  if (!next.changed) return { changed: false, warnings: [] };
  const text = renderFstab(next.fstab);
  const candidate = '/etc/fstab.chops-new';
  const backup = `/etc/fstab.chops-${stamp}`;
  await host.putFile(candidate, text, { mode: '0644', owner: 'root', group: 'root' });
  const verdict = await host.whenApplied({ ok: true, errors: [] as string[], warnings: [] as string[], summary: '' }, () => host.fact(fstabVerify, candidate));
  if (!verdict.ok) {
    await host.$`rm -f -- ${candidate}`;
    throw new ChopsError(
      `${host.name}: the new /etc/fstab would not pass findmnt --verify (${verdict.summary}); /etc/fstab was not changed:\n  ${verdict.errors.join('\n  ')}`,
      {
        hint: 'check the device and the mount point, then run again',
      },
    );
  }
  await host.$`cp -p -- /etc/fstab ${backup}`;
  await host.$`mv -f -- ${candidate} /etc/fstab`;
  const after = await host.whenApplied({ ok: true, errors: [] as string[], summary: '', warnings: [] as string[] }, () => host.fact(fstabVerify, '/etc/fstab'));
  if (!after.ok) {
    await host.$`cp -p -- ${backup} /etc/fstab`;
    throw new ChopsError(
      `${host.name}: /etc/fstab failed findmnt --verify after the change (${after.summary}); the backup ${backup} was put back:\n  ${after.errors.join('\n  ')}`,
    );
  }
  // systemd generates mount units from fstab: let it read the new table now, not at the next boot
  await host.$`if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi`;
  return { changed: true, backup, warnings: verdict.warnings };
}

function stampOf(runId?: string): string {
  return runId ?? new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
}

async function uuidOf(host: HostHandle, memory: HostMemory): Promise<string> {
  const u = memory.get<string>(MEM.uuid);
  if (u) return u;
  const device = volumeDevice(memory);
  return host.whenApplied(UUID_PLACEHOLDER, async () => {
    const s = await host.fact(blkidProbe, device);
    if (!s.UUID) throw new ChopsError(`${host.name}: ${device} has no filesystem UUID`, { hint: 'the step "make filesystem" must run first' });
    return s.UUID;
  });
}

/** Phase 1: the entry, staged with noauto (see above). */
export const addFstabEntryStep: Step<DiskParams> = {
  name: 'add fstab entry',
  async run({ host, params, memory, run }) {
    const uuid = await uuidOf(host, memory);
    const dir = host.def.clickhouse.dataDir;
    // Already enabled (a rerun after the swap): that is our line too, leave it.
    const enabled = dataDirLine(uuid, dir, params['fstab-options'], false);
    const cur = await host.fact(fstab);
    if (cur.lines.some((l) => l.raw === enabled)) {
      memory.set(MEM.fstabLine, enabled);
      return { changed: false, skipped: `already in /etc/fstab (enabled): ${enabled}` };
    }
    const line = dataDirLine(uuid, dir, params['fstab-options'], true);
    const r = await writeFstabLine(host, line, uuid, stampOf(run.runId));
    memory.set(MEM.fstabLine, line);
    if (!r.changed) return { changed: false, skipped: `already in /etc/fstab: ${line}` };
    return { changed: true, note: `${line}  (backup ${r.backup})`, data: { line, backup: r.backup, warnings: r.warnings } };
  },
};

async function setStaged(host: HostHandle, params: DiskParams, memory: HostMemory, runId: string | undefined, staged: boolean) {
  const uuid = await uuidOf(host, memory);
  const line = dataDirLine(uuid, host.def.clickhouse.dataDir, params['fstab-options'], staged);
  const r = await writeFstabLine(host, line, uuid, stampOf(runId));
  memory.set(MEM.fstabLine, line);
  return { line, ...r };
}

/** In the swap, once the volume is mounted at the data directory: mount it at every boot. */
export const enableFstabEntryStep: Step<DiskParams> = {
  name: 'enable fstab entry',
  async run({ host, params, memory, run }) {
    const r = await setStaged(host, params, memory, run.runId, false);
    if (!r.changed) return { changed: false, skipped: `already enabled: ${r.line}` };
    return { changed: true, note: `${r.line}  (backup ${r.backup})` };
  },
  async rollback({ host, params, memory, run }) {
    await setStaged(host, params, memory, run.runId, true);
  },
};

export async function stageFstabEntry(host: HostHandle, params: DiskParams, memory: HostMemory, runId?: string): Promise<void> {
  await setStaged(host, params, memory, runId, true);
}
