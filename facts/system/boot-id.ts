// The kernel's boot id: changes at every boot, so "the host rebooted" is a different boot id
// (a reused SSH connection survives `systemctl reboot`; an answer alone proves nothing).
import { defineFact } from '../../src/fact.js';
import { ChopsError } from '../../src/errors.js';

export function parseBootId(stdout: string): string {
  const id = stdout.trim();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id))
    throw new ChopsError(`cannot read the boot id: /proc/sys/kernel/random/boot_id said ${JSON.stringify(id.slice(0, 80))}`);
  return id;
}

export const bootId = defineFact({
  name: 'boot id',
  command: () => 'cat /proc/sys/kernel/random/boot_id',
  parse: ({ stdout }) => parseBootId(stdout),
});
