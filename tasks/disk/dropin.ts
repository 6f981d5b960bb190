// A systemd drop-in that makes clickhouse-server require the data directory's mount
// (RequiresMountsFor= adds Requires= and After= on the mount unit): if the volume is missing at
// boot, the mount fails and the server does not start, instead of starting on the empty
// directory underneath and writing there (ClickHouse#73949, scylladb#3441).
// Installed in the swap, not before: RequiresMountsFor= also pulls in a `noauto` mount
// (systemd.unit(5)), which would mount the still-empty volume over the old data at a reboot.
import type { HostHandle } from '../../src/host.js';
import type { Step } from '../../src/engine/playbook.js';
import type { DiskParams } from './params.js';

export function dropInPath(service: string): string {
  const unit = service.endsWith('.service') ? service : `${service}.service`;
  return `/etc/systemd/system/${unit}.d/chops-data-mount.conf`;
}

/** Pure: the drop-in's content. */
export function dropInContent(dataDir: string): string {
  // systemd unit files: a path with spaces is written with C-style escapes (\x20)
  const path = dataDir.replace(/[\\\s]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return ['# Written by chops (move-data): never start on an empty directory when the data volume is missing.', '[Unit]', `RequiresMountsFor=${path}`, ''].join(
    '\n',
  );
}

function systemdManaged(host: HostHandle): string | undefined {
  const c = host.def.clickhouse;
  return c.startCommand || c.stopCommand ? 'the inventory gives custom start/stop commands (no systemd unit to extend)' : undefined;
}

export const requireMountStep: Step<DiskParams> = {
  name: 'require data mount',
  async run({ host }) {
    const why = systemdManaged(host);
    if (why) return { changed: false, skipped: why };
    const c = host.def.clickhouse;
    const file = dropInPath(c.service);
    const dir = file.slice(0, file.lastIndexOf('/'));
    if ((await host.probe({ nothrow: true })`test -d ${dir}`).code !== 0) await host.$`mkdir -p -- ${dir}`;
    const r = await host.putFile(file, dropInContent(c.dataDir), { mode: '0644', owner: 'root', group: 'root' });
    if (!r.changed) return { changed: false, skipped: `${file} already says RequiresMountsFor=${c.dataDir}` };
    await host.$`systemctl daemon-reload`;
    return { changed: true, note: `${file}: RequiresMountsFor=${c.dataDir}` };
  },
  async rollback({ host }) {
    if (systemdManaged(host)) return;
    await removeDropIn(host);
  },
};

export async function removeDropIn(host: HostHandle): Promise<void> {
  const file = dropInPath(host.def.clickhouse.service);
  await host.$`if [ -e ${file} ]; then rm -f -- ${file} && systemctl daemon-reload; fi`;
}
