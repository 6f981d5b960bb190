// vmctl.ts - helper CLI for image.sh (not for tests): probe the accelerator and save a booted
// guest's state. Run from the repository root:
//   node --import tsx test/vm/vmctl.ts probe-accel VMDIR                -> prints kvm|tcg
//   node --import tsx test/vm/vmctl.ts snapshot VMDIR ACCEL MEM OUTDIR  -> OUTDIR/{state.zst,root.qcow2,info.json}
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { type Accel, DATA_DISK_SIZE, Qmp, accelArgs, consoleTail, freePort, isOurQemu, pidAlive, qemuArgs, sleep, spawnQemu, sshRun } from './machine.js';

const log = (m: string) => process.stderr.write(`[vmctl ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/**
 * /dev/kvm existing is not enough: on some hosts it is a paravirtual KVM that never gets a stock
 * Debian kernel past its decompressor, and `-cpu host` aborts there. So boot the guest kernel +
 * initramfs under KVM for up to 10 s and require that it reaches userspace (real KVM: ~1 s).
 */
async function probeAccel(vmDir: string): Promise<Accel> {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return 'tcg';
  }
  const logf = path.join(vmDir, 'accel-probe.console');
  rmSync(logf, { force: true });
  const { child } = spawnQemu([
    ...accelArgs('kvm'),
    '-m',
    '256',
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    path.join(vmDir, 'vmlinuz'),
    '-initrd',
    path.join(vmDir, 'initrd.img'),
    '-append',
    'console=ttyS0 panic=-1 root=/dev/nonexistent rootdelay=30',
    '-serial',
    `file:${logf}`,
  ]);
  const deadline = Date.now() + 10000;
  let ok = false;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    const out = existsSync(logf) ? readFileSync(logf, 'utf8') : '';
    if (/Run \/init as init process|Freeing unused kernel/.test(out)) {
      ok = true;
      break;
    }
    await sleep(200);
  }
  try {
    child.kill('SIGKILL');
  } catch {
    /* gone */
  }
  return ok ? 'kvm' : 'tcg';
}

async function snapshot(vmDir: string, accel: Accel, memMiB: number, out: string): Promise<void> {
  const t0 = Date.now();
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  // relative backing path: the cache directory can be moved/restored as a whole
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', '../base.qcow2', 'root.qcow2'], { cwd: out });
  const work = path.join(out, 'work');
  mkdirSync(work);
  const data = path.join(work, 'data.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', data, DATA_DISK_SIZE]);
  const port = await freePort();
  const knownHosts = path.join(work, 'known_hosts');
  const hostKey = readFileSync(path.join(vmDir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
  const target = { port, identityFile: path.join(vmDir, 'id_ed25519'), knownHosts };
  const tag = `snapshot-${process.pid}`;
  const qmpSocket = path.join(work, 'qmp.sock');
  const consoleLog = path.join(work, 'console.log');
  const { child, stderr } = spawnQemu(
    qemuArgs({
      tag,
      accel,
      memMiB,
      kernel: path.join(vmDir, 'vmlinuz'),
      initrd: path.join(vmDir, 'initrd.img'),
      rootDisk: path.join(out, 'root.qcow2'),
      dataDisk: data,
      sshPort: port,
      qmpSocket,
      consoleLog,
    }),
  );
  const pid = child.pid!;
  const alive = () => pidAlive(pid) && child.exitCode === null;
  try {
    log(`cold-booting the image (${accel}, ${memMiB} MiB, ssh port ${port})`);
    const deadline = Date.now() + (accel === 'kvm' ? 180_000 : 900_000);
    for (;;) {
      if (!alive()) throw new Error(`QEMU exited during boot: ${stderr()}\n${consoleTail(consoleLog)}`);
      if (Date.now() > deadline) throw new Error(`no ssh after boot:\n${consoleTail(consoleLog)}`);
      const r = await sshRun(target, 'true', { timeoutMs: 15000 });
      if (r.code === 0) break;
      await sleep(1000);
    }
    const tBoot = Date.now() - t0;
    log(`ssh up after ${(tBoot / 1000).toFixed(1)}s; settling`);
    const settle = await sshRun(
      target,
      [
        'st=$(timeout 300 systemctl is-system-running --wait 2>/dev/null || true); echo "system: $st"',
        'systemctl --failed --no-legend --plain | sed "s/^/failed: /"',
        'sleep 3; sync; fstrim -a >/dev/null 2>&1 || true; echo 3 > /proc/sys/vm/drop_caches',
      ].join('\n'),
      { timeoutMs: 400_000 },
    );
    process.stderr.write(settle.stdout);
    if (!/system: (running|degraded)/.test(settle.stdout)) throw new Error(`guest did not settle: ${settle.stdout}${settle.stderr}`);
    const qmp = await Qmp.connect(qmpSocket, 10000, alive);
    const t1 = Date.now();
    await qmp.execute('migrate', { uri: `exec:zstd -q -3 -T0 > ${path.join(out, 'state.zst')}` });
    for (;;) {
      const st = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
      if (st.status === 'completed') break;
      if (st.status === 'failed' || st.status === 'cancelled') throw new Error(`saving the state failed: ${JSON.stringify(st)}`);
      await sleep(200);
    }
    const tSave = Date.now() - t1;
    await qmp.execute('quit').catch(() => {});
    qmp.close();
    for (let i = 0; i < 100 && alive(); i++) await sleep(100);
    const info = {
      accel,
      memMiB,
      bootSeconds: tBoot / 1000,
      saveSeconds: tSave / 1000,
      totalSeconds: (Date.now() - t0) / 1000,
      stateBytes: Number(
        execFileSync('stat', ['-c', '%s', path.join(out, 'state.zst')])
          .toString()
          .trim(),
      ),
      created: new Date().toISOString(),
    };
    writeFileSync(path.join(out, 'info.json'), JSON.stringify(info, null, 2) + '\n');
    log(`state saved in ${info.saveSeconds}s (${(info.stateBytes / 1e6).toFixed(0)} MB); snapshot total ${info.totalSeconds}s`);
  } finally {
    if (isOurQemu(pid, tag)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(work, { recursive: true, force: true });
  }
}

const [cmd, ...a] = process.argv.slice(2);
try {
  if (cmd === 'probe-accel' && a.length === 1) {
    process.stdout.write((await probeAccel(a[0])) + '\n');
  } else if (cmd === 'snapshot' && a.length === 4) {
    await snapshot(a[0], a[1] as Accel, Number(a[2]), a[3]);
  } else {
    process.stderr.write('usage: vmctl.ts probe-accel VMDIR | snapshot VMDIR ACCEL MEM OUTDIR\n');
    process.exit(2);
  }
} catch (e) {
  log(`ERROR: ${(e as Error).message}`);
  process.exit(1);
}
