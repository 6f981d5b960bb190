// prepare-disk: give a host that has no ClickHouse data yet its data volume — the disk part of
// the move-data runbook, then the volume mounted at the data directory, at every boot, and
// required by clickhouse-server. (A host with data: use move-data, which copies it across.)
import { definePlaybook, type Phase } from '../src/engine/playbook.js';
import { DISK_PARAMS, enableDataMountSteps, mountEmptyDataDirStep, prepareDiskSteps, type DiskParams } from '../tasks/disk/index.js';

const runbook: Phase<DiskParams>[] = [
  {
    name: 'prepare disk',
    scope: 'each',
    steps: [
      ...prepareDiskSteps, //   fstab check, disk, 8e partition, PV, VG, LV, ext4, staged fstab line
      mountEmptyDataDirStep, // refuses a data directory that holds anything
      ...enableDataMountSteps, // mounted at boot; clickhouse-server requires the mount
    ],
  },
];

export default definePlaybook<DiskParams>({
  name: 'prepare-disk',
  description: 'Partition, LVM and ext4 on a new disk, mounted by UUID at the (empty) data directory, required by clickhouse-server',
  params: DISK_PARAMS,
  phases: () => runbook,
});
