// What the prepare-disk guest tests share: a guest with two empty disks, a shell on it that
// must succeed, chops against it with --json, and the state a refusal must leave alone.
import assert from 'node:assert/strict';
import { chops, events } from '../support/cli.js';
import type { Guest, Lab } from './guests.js';

export const DIR = '/var/lib/clickhouse';

export function diskHarness(env: () => { lab: Lab; g: Guest }) {
  const sh = async (cmd: string) => {
    const { lab, g } = env();
    const r = await lab.ssh(g, cmd, { timeoutMs: 120_000 });
    assert.equal(r.code, 0, `${cmd}\n${r.stderr}`);
    return r.stdout;
  };
  const run = async (args: string[]) => {
    const r = await chops([...args, '-i', env().lab.inventoryPath, '--json'], { timeoutMs: 8 * 60_000 });
    return { ...r, events: events(r.stdout), seconds: r.ms / 1000 };
  };
  const show = (r: { code: number | null; stdout: string; stderr: string; seconds: number }) =>
    `exit ${r.code} after ${r.seconds}s\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`;
  /** Everything a refusal must leave alone. */
  const snapshot = () => sh(`lsblk -n -o NAME,TYPE,FSTYPE,MOUNTPOINTS; sha256sum /etc/fstab; ls /etc/fstab*; vgs --noheadings -o vg_name; ls ${DIR} | wc -l`);
  return { sh, run, show, snapshot };
}
