// The state of the ClickHouse service on a host: systemd's view of the unit by default, or the
// inventory's status_command on hosts without systemd.
import { defineFact } from '../../src/fact.js';
import type { Host } from '../../src/inventory/types.js';
import { shq } from '../../src/quote.js';

export type ServiceState = 'active' | 'inactive' | 'failed' | 'unknown';

export function statusCommand(host: Host): string {
  const c = host.clickhouse;
  // In a subshell: a status command with `;`, `&&` or `#` is judged as a whole.
  if (c.statusCommand)
    return `if ( ${c.statusCommand}
) >/dev/null 2>&1; then echo active; else echo inactive; fi`;
  return `systemctl is-active ${shq(c.service)} 2>/dev/null || true`;
}

/** The last line of `systemctl is-active` (or of the status-command wrapper). Anything else is "unknown". */
export function parseServiceState(out: string): ServiceState {
  const s = out.trim().split('\n').pop() ?? '';
  if (s === 'active' || s === 'activating' || s === 'reloading') return 'active';
  if (s === 'inactive' || s === 'deactivating') return 'inactive';
  if (s === 'failed') return 'failed';
  return 'unknown';
}

export const clickhouseService = defineFact({
  name: 'clickhouse service state',
  command: (_: void, host) => statusCommand(host),
  parse: ({ stdout }) => parseServiceState(stdout),
  timeoutMs: 15_000,
});
