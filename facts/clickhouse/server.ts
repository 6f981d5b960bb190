// Which ClickHouse answers and for how long it has been up.
import { defineQueryFact } from '../../src/fact.js';
import { ChopsError } from '../../src/errors.js';

export interface ServerInfo {
  version: string;
  uptimeSeconds: number;
}

export function parseServerInfo(rows: Record<string, unknown>[]): ServerInfo {
  const r = rows[0];
  if (!r || typeof r.version !== 'string' || r.version === '')
    throw new ChopsError(`SELECT version(), uptime() returned ${JSON.stringify(rows).slice(0, 200)}`);
  return { version: r.version, uptimeSeconds: Number(r.uptime) };
}

export const serverInfo = defineQueryFact({
  name: 'server version',
  query: () => 'SELECT version() AS version, uptime() AS uptime',
  parse: (rows) => parseServerInfo(rows),
});
