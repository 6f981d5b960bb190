// move-data: move the ClickHouse data directory onto a new volume, replica by replica, with the
// server down only for the last small delta (the two-phase copy of move-data.md), never two
// replicas of a shard down at once, and the old directory kept until the copy is proven and the
// server is healthy on it. A failure between the stop and the after-start gates puts the replica
// back on its original directory; `chops resume` continues from the exact step.
import { definePlaybook, type Phase, type Step } from '../src/engine/playbook.js';
import { enableDataMountSteps, prepareDiskSteps } from '../tasks/disk/index.js';
import { checkTopologyStep } from '../tasks/clickhouse/replica-steps.js';
import { MOVE_PARAMS, type MoveParams } from '../tasks/datadir/params.js';
import * as s from '../tasks/datadir/steps.js';
import { moveSummary } from '../tasks/datadir/summary.js';

export default definePlaybook<MoveParams>({
  name: 'move-data',
  description:
    'Move the ClickHouse data directory onto a new volume replica by replica: copy online, stop only for the final pass, swap, verify; rollback on failure',
  params: MOVE_PARAMS,
  phases(p, _inventory) {
    const prepare = p.volume === 'prepare';
    const phases: Phase<MoveParams>[] = [
      {
        name: 'preflight',
        scope: 'once',
        steps: [checkTopologyStep, s.backupPreconditionStep], // inventory == servers; a recent good backup of every shard
      },
      {
        name: 'new volume',
        scope: 'each', // every host in parallel, before any server stops
        steps: [
          ...(prepare ? (prepareDiskSteps as unknown as Step<MoveParams>[]) : []), // partition 8e, PV/VG/LV, ext4, fstab line by UUID (noauto until the swap)
          s.useExistingVolumeStep, //  the fstab line for the data dir (inactive until the swap)
          s.preflightStep, //          size, links, config paths, mounts inside, room on the volume (mounted at staging)
        ],
      },
      {
        name: 'move replicas',
        scope: 'rolling',
        steps: [
          s.liveCopyStep, //           rsync passes while the server runs, until the delta converges
          s.movePeersStep, //          the other replicas of the shard are healthy and caught up
          s.moveIdleStep, //           this replica has nothing in flight
          s.recordCountsStep, //       tables and rows, to compare after the move
          s.pauseBackupStep, //        the backup agent must not write shadow/ or backup/ now
          s.stopStep, //               rollback: back onto the original directory, started
          s.finalPassStep, //          --delete, small files by checksum
          s.proveIdentityStep, //      dry run lists nothing; counts, sizes, links equal
          s.unmountStagingStep,
          s.setAsideStep, //           mv /var/lib/clickhouse /var/lib/clickhouse-tmp (same filesystem)
          s.mountDataDirStep, //       mount /var/lib/clickhouse (fstab line active again)
          ...(prepare ? (enableDataMountSteps as unknown as Step<MoveParams>[]) : []), // mounted at boot; RequiresMountsFor= drop-in
          s.fixOwnershipStep, //       clickhouse:clickhouse, lost+found too
          s.moveStartStep,
          s.moveHealthyStep, //        answers, writable, caught up, sees its shard, no new errors
          s.verifyStep, //             tables and counts: as before the stop, as on the peers
          s.resumeBackupStep,
        ],
      },
    ];
    return phases;
  },
  summary: moveSummary,
});
