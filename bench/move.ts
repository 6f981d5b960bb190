// bench:move — what move-data's two-phase copy buys, measured side by side in one run on the
// ClickHouse lab (needs the heavy-lab lock: `flock /run/chops-heavy.lock npm run bench:move`).
//
// Two sizes of ClickHouse parts (~0.5 GB on shard 01, ~2 GB on shard 02, generated with
// INSERT … SELECT FROM numbers(); replicated, so both replicas of a shard hold the same data).
// On each shard one replica is moved with the two-phase copy (default), the other with
// --copy=offline (the runbook's stop-then-copy), and downtime (server stopped → healthy again,
// as move-data records it) is compared. Then the online copy's first pass is compared with a bare
// `rsync -aH` of the same tree on the same host. The new volume is a directory on the container's
// disk, bind-mounted (test/support/lab-volume.ts, kind 'disk'), so copies run at disk speed.
// Targets (performance-anchors.md): downtime ratio ≤ 0.10, nearly flat as data grows; copy
// overhead ≤ 1.1× bare rsync.
//   CHOPS_BENCH_SCALE=0.1 for a quick try (sizes scaled down).
import { chQuery, waitClusterIdle } from '../test/support/clickhouse.js';
import { chops, events } from '../test/support/cli.js';
import { clickhouseLab, labSh } from '../test/support/lab.js';
import { prepareLabVolume } from '../test/support/lab-volume.js';
import { runProcess } from '../test/support/process.js';

const scale = Number(process.env.CHOPS_BENCH_SCALE ?? 1);
// ~52 bytes per row on disk after LZ4 (64 hex chars of hashes compress about 2:1), measured here.
const ROWS_PER_GB = 20_000_000;

interface Figures {
  size: string;
  bytes: number;
  twoPhaseDowntimeMs: number;
  offlineDowntimeMs: number;
  firstPassMs: number;
  bareRsyncMs: number;
  passes: number;
}

const fmtS = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const build = await runProcess('npm', ['run', '--silent', 'build']);
  if (build.code !== 0) throw new Error(`build failed: ${build.stderr}`);
  const lab = await clickhouseLab('chops-bench-move');
  try {
    await waitClusterIdle(lab.nodes);
    for (const n of lab.nodes) await prepareLabVolume(lab, n.name, { kind: 'disk' });
    const plan = [
      { size: '~0.5 GB', gb: 0.5, shard: ['ch1', 'ch2'] },
      { size: '~2 GB', gb: 2, shard: ['ch3', 'ch4'] },
    ];
    const out: Figures[] = [];
    for (const p of plan) {
      const [online, offline] = p.shard;
      const first = lab.nodes.find((n) => n.name === online)!;
      const rows = Math.round(p.gb * scale * ROWS_PER_GB);
      const t0 = Date.now();
      await chQuery(
        first,
        `INSERT INTO lab.events_local (ts, id, v) SELECT now(), number, concat(hex(cityHash64(number)), hex(cityHash64(number + 1)), hex(cityHash64(number + 2)), hex(cityHash64(number + 3))) FROM numbers(${rows})`,
        { timeoutMs: 1_800_000 },
      );
      await waitClusterIdle(lab.nodes, 1_800_000);
      const bytes = Number((await labSh(lab, online, 'du -sb /var/lib/clickhouse | cut -f1')).trim());
      console.error(`${p.size}: ${rows} rows, ${(bytes / 1e9).toFixed(2)} GB on ${online} (generated and replicated in ${fmtS(Date.now() - t0)})`);

      const move = async (host: string, extra: string[]) => {
        const r = await chops(
          ['run', 'move-data', '-i', lab.inventoryPath, '--volume', 'existing', '--no-backup-check', '--yes', '--json', '--limit', host, ...extra],
          { timeoutMs: 3_600_000 },
        );
        if (r.code !== 0) throw new Error(`move-data on ${host} failed:\n${r.stdout.slice(-3000)}\n${r.stderr}`);
        const ev = events(r.stdout).filter((e) => e.type === 'result' && e.host === host);
        const healthy = ev.find((e) => e.step === 'wait until healthy')?.data;
        const live = ev.find((e) => /copy while the server runs/.test(e.step))?.data;
        return { downtimeMs: Number(healthy?.downtimeMs), passes: (live?.passes ?? []) as Array<{ ms: number; delta: number }> };
      };
      const two = await move(online, []);
      const off = await move(offline, ['--copy', 'offline']);
      // A bare rsync of the same tree (the old directory set aside on the moved host) onto the same volume.
      const bare = await labSh(
        lab,
        online,
        'rm -rf /mnt/chops-lab-disk/bare; s=$(date +%s%N); rsync -aH /var/lib/clickhouse-tmp/ /mnt/chops-lab-disk/bare/; e=$(date +%s%N); rm -rf /mnt/chops-lab-disk/bare; echo $(( (e - s) / 1000000 ))',
      );
      out.push({
        size: p.size,
        bytes,
        twoPhaseDowntimeMs: two.downtimeMs,
        offlineDowntimeMs: off.downtimeMs,
        firstPassMs: two.passes[0]?.ms ?? NaN,
        bareRsyncMs: Number(bare.trim()),
        passes: two.passes.length,
      });
    }
    console.log('\nmove-data downtime per replica (stopped → healthy), same data, same run');
    console.log('size      data      two-phase   offline     ratio   live passes   1st pass    bare rsync -aH   overhead');
    for (const f of out) {
      console.log(
        `${f.size.padEnd(9)} ${`${(f.bytes / 1e9).toFixed(2)} GB`.padEnd(9)} ${fmtS(f.twoPhaseDowntimeMs).padEnd(11)} ${fmtS(f.offlineDowntimeMs).padEnd(11)} ${(f.twoPhaseDowntimeMs / f.offlineDowntimeMs).toFixed(3).padEnd(7)} ${String(f.passes).padEnd(13)} ${fmtS(f.firstPassMs).padEnd(11)} ${fmtS(f.bareRsyncMs).padEnd(16)} ${(f.firstPassMs / f.bareRsyncMs).toFixed(2)}×`,
      );
    }
    const [a, b] = out;
    const ra = a.twoPhaseDowntimeMs / a.offlineDowntimeMs;
    const rb = b.twoPhaseDowntimeMs / b.offlineDowntimeMs;
    console.log(`\ndowntime ratio two-phase/offline: ${ra.toFixed(3)} at ${a.size}, ${rb.toFixed(3)} at ${b.size} (target ≤ 0.10)`);
    console.log(
      `two-phase downtime growth ${a.size} → ${b.size}: ${(b.twoPhaseDowntimeMs / a.twoPhaseDowntimeMs).toFixed(2)}× for ${(b.bytes / a.bytes).toFixed(2)}× the data (offline: ${(b.offlineDowntimeMs / a.offlineDowntimeMs).toFixed(2)}×)`,
    );
    console.log(
      `online copy (first pass) vs bare rsync -aH: ${(a.firstPassMs / a.bareRsyncMs).toFixed(2)}× and ${(b.firstPassMs / b.bareRsyncMs).toFixed(2)}× (target ≤ 1.1×)`,
    );
  } finally {
    await lab.down();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
