// Controlling the ClickHouse service: systemd by default, or the per-host commands from the
// inventory (start_command/stop_command/status_command) on hosts without systemd.
import type { HostHandle } from '../../src/host.js';
import { shq } from '../../src/quote.js';

export type ServiceState = 'active' | 'inactive' | 'failed' | 'unknown';

export function statusCommand(h: HostHandle): string {
  const c = h.def.clickhouse;
  // In a subshell: a status command with `;`, `&&` or `#` is judged as a whole.
  if (c.statusCommand) return `if ( ${c.statusCommand}
) >/dev/null 2>&1; then echo active; else echo inactive; fi`;
  return `systemctl is-active ${shq(c.service)} 2>/dev/null || true`;
}

export function parseServiceState(out: string): ServiceState {
  const s = out.trim().split('\n').pop() ?? '';
  if (s === 'active' || s === 'activating' || s === 'reloading') return 'active';
  if (s === 'inactive' || s === 'deactivating') return 'inactive';
  if (s === 'failed') return 'failed';
  return 'unknown';
}

export async function serviceState(h: HostHandle): Promise<ServiceState> {
  const r = await h.probe({ nothrow: true, timeoutMs: 15_000 })`${raw(statusCommand(h))}`;
  return parseServiceState(r.stdout);
}

export async function stopService(h: HostHandle): Promise<void> {
  const c = h.def.clickhouse;
  if (c.stopCommand) await h.runString('exec', c.stopCommand, { timeoutMs: 300_000 });
  else await h.$({ timeoutMs: 300_000 })`systemctl stop ${c.service}`;
}

export async function startService(h: HostHandle): Promise<void> {
  const c = h.def.clickhouse;
  if (c.startCommand) await h.runString('exec', c.startCommand, { timeoutMs: 300_000 });
  else await h.$({ timeoutMs: 300_000 })`systemctl start ${c.service}`;
}

import { raw } from '../../src/quote.js';
