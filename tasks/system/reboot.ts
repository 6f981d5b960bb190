// Reboot a host and follow it: remember the boot id, ask systemd to reboot a second later (so our
// command returns cleanly), reconnect, and insist on a NEW boot id — a reused connection can
// outlive the reboot request and a naive "wait for ssh" would pass against the old boot.
//
// Idempotent across a crash: before rebooting, the old boot id is written to a marker named after
// the run (/var/lib/chops/reboot-<run>). A resumed run that finds the marker with a different
// boot id knows this reboot already happened and does not reboot the host a second time.
import type { HostHandle } from '../../src/host.js';
import type { StepResult } from '../../src/engine/playbook.js';

export async function readBootId(h: HostHandle): Promise<string> {
  return (await h.probe`cat /proc/sys/kernel/random/boot_id`).stdout.trim();
}

export async function rebootAndWait(h: HostHandle, opts: { timeoutMs: number; runId?: string }): Promise<StepResult> {
  const before = await readBootId(h);
  const marker = opts.runId ? `/var/lib/chops/reboot-${opts.runId}` : undefined;
  if (marker) {
    const seen = (await h.probe({ nothrow: true })`cat ${marker} 2>/dev/null`).stdout.trim();
    if (seen && seen !== before) {
      await h.$`rm -f ${marker}`;
      return { changed: false, skipped: `already rebooted by this run (boot id ${seen.slice(0, 8)} -> ${before.slice(0, 8)})` };
    }
    await h.$`mkdir -p /var/lib/chops && printf '%s\n' ${before} > ${marker}`;
  }
  await h.$`nohup sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 </dev/null &`;
  h.note(`rebooting; waiting up to ${Math.round(opts.timeoutMs / 1000)} s for a new boot`);
  await h.transport.reconnect({ expectNewBootFrom: before, timeoutMs: opts.timeoutMs });
  const after = await readBootId(h);
  if (marker) await h.$`rm -f ${marker}`;
  return { note: `back after reboot (boot id ${before.slice(0, 8)} -> ${after.slice(0, 8)})`, data: { bootIdBefore: before, bootIdAfter: after } };
}
