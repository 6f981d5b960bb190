// Controlling the ClickHouse service: systemd by default, or the per-host commands from the
// inventory (start_command/stop_command/status_command) on hosts without systemd.
import type { HostHandle } from '../../src/host.js';
import { clickhouseService, type ServiceState } from '../../facts/system/service.js';

export { statusCommand, parseServiceState, type ServiceState } from '../../facts/system/service.js';

export function serviceState(h: HostHandle): Promise<ServiceState> {
  return h.fact(clickhouseService);
}

export async function stopService(h: HostHandle): Promise<void> {
  const c = h.def.clickhouse;
  if (c.stopCommand) await h.runString('exec', c.stopCommand, { timeoutMs: 300_000 });
  else await h.$({ timeoutMs: 300_000 })`systemctl stop ${c.service}`;
}

/**
 * Start without waiting for the server to be ready: from 22.12 the packaged unit is Type=notify,
 * so a blocking `systemctl start` returns only once every table is loaded (minutes on a big
 * replica) under a fixed timeout. The "server answers" gate waits instead, under the gate
 * deadline (--wait-timeout), and sees a unit that failed. The same for a rollback's start.
 */
export async function startService(h: HostHandle): Promise<void> {
  const c = h.def.clickhouse;
  if (c.startCommand) await h.runString('exec', c.startCommand, { timeoutMs: 300_000 });
  else await h.$({ timeoutMs: 60_000 })`systemctl start --no-block ${c.service}`;
}
