// Mounting the new volume at the data directory of a host that has no data yet (the
// prepare-disk playbook). A directory that holds data is refused: moving data is move-data's job.
import type { Step } from '../../src/engine/playbook.js';
import { ChopsError } from '../../src/errors.js';
import type { DiskParams } from './params.js';
import { volumeDevice } from './volume.js';

export const mountEmptyDataDirStep: Step<DiskParams> = {
  name: 'mount data directory',
  async run({ host, memory }) {
    const dir = host.def.clickhouse.dataDir;
    const device = volumeDevice(memory);
    // what is mounted there now (findmnt exits 1 when nothing is), and what the directory holds
    const cur = await host.probe({ nothrow: true })`findmnt -n -o SOURCE --mountpoint ${dir}`;
    const real = await host.probe({ nothrow: true })`readlink -e -- ${device}`;
    if (cur.code === 0) {
      const src = cur.stdout.trim();
      const same = await host.probe({ nothrow: true })`readlink -e -- ${src}`;
      if (real.stdout.trim() && same.stdout.trim() === real.stdout.trim()) return { changed: false, skipped: `${device} is already mounted at ${dir}` };
      throw new ChopsError(`${host.name}: ${src} is mounted at ${dir}, not ${device}`, { hint: 'unmount it first if it is not in use' });
    }
    const ls = await host.probe({ nothrow: true })`if [ -d ${dir} ]; then ls -A -- ${dir}; fi`;
    const entries = ls.stdout.split('\n').filter(Boolean);
    if (entries.length) {
      throw new ChopsError(`${host.name}: ${dir} is not empty (${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', ...' : ''})`, {
        hint: 'this host already has data: use the move-data playbook, which copies it onto the new volume',
      });
    }
    const svc = host.def.clickhouse.service;
    await host.$`mkdir -p -- ${dir}`;
    await host.$`mount -- ${dir}`; // from the fstab entry: the same options the next boot uses
    // a fresh ext4 root and its lost+found belong to root; ClickHouse wants to own its tree (ClickHouse#90027)
    await host.$`if id -u clickhouse >/dev/null 2>&1; then chown clickhouse:clickhouse -- ${dir} ${`${dir}/lost+found`}; fi`;
    return { changed: true, note: `${device} mounted at ${dir} (${svc} may start on it)` };
  },
};
