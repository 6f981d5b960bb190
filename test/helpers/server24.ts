// How a ClickHouse 24.8 server answers the statements chops' gates send, as a function for
// test/helpers/fake-clickhouse-http.ts. The row shapes and where they come from:
// test/helpers/clickhouse-shapes.ts. A test states the server it stands for (its rows, its
// failures) with the options, next to its assertions.
import type { FakeAnswer } from './fake-clickhouse-http.js';
import { metrics24, probeRows24, VERSION_24 } from './clickhouse-shapes.js';

// A healthy 24.8 replica's system.replicas row in JSONEachRow: UInt8/UInt32 as numbers, the
// Int64 log_lag and UInt64 absolute_delay quoted; replica_is_active a JSON object.
export const REPLICA = {
  database: 'shop',
  table: 'orders',
  is_readonly: 0,
  is_session_expired: 0,
  queue_size: 0,
  inserts_in_queue: 0,
  merges_in_queue: 0,
  log_lag: '0',
  absolute_delay: '0',
  active_replicas: 2,
  total_replicas: 2,
  replica_is_active: { a: 1, b: 1 },
};

export interface Server24 {
  /** The probe's rows (default: probeRows24()). */
  probe?: Record<string, unknown>[];
  /** What formatQueryOrNull('SYSTEM SYNC REPLICA … LIGHTWEIGHT') returns (default: the statement). */
  lightweight?: string | null;
  replicas?: Record<string, unknown>[] | (() => Record<string, unknown>[]);
  /** The answer to one SYSTEM SYNC REPLICA (default: done at once). */
  sync?: (statement: string, params: URLSearchParams) => FakeAnswer;
  /** system.asynchronous_metrics + system.metrics rows at each ask (default: metrics24()). */
  metrics?: () => Record<string, unknown>[];
  /** system.replication_queue rows (as the columns asked for). */
  queue?: Record<string, unknown>[];
  /** system.zookeeper_connection rows (default: one live connection). */
  keeper?: Record<string, unknown>[];
  processes?: Record<string, unknown>[];
  errors?: Record<string, unknown>[];
  distributionQueue?: Record<string, unknown>[];
  /** system.tables fails (a MySQL database engine whose server is unreachable: ClickHouse #30783). */
  tablesFail?: boolean;
  /** The row of the loader summary at each ask (asynchronous loading in progress). */
  loader?: () => Record<string, unknown>;
}

/** Only the columns the statement asks for (replica_is_active exists on 24.8 but is read only when named). */
function asked(q: string, row: Record<string, unknown>): Record<string, unknown> {
  const { replica_is_active, ...rest } = row;
  return q.includes('replica_is_active') && replica_is_active !== undefined ? { ...rest, replica_is_active } : rest;
}

export function server24(s: Server24): (q: string, params: URLSearchParams) => FakeAnswer {
  const replicas = () => (typeof s.replicas === 'function' ? s.replicas() : (s.replicas ?? [REPLICA]));
  return (q, params) => {
    if (q.includes("SELECT 'version' AS kind")) return { rows: s.probe ?? probeRows24() };
    if (/^SELECT formatQueryOrNull\(/.test(q))
      return { rows: [{ q: s.lightweight === undefined ? 'SYSTEM SYNC REPLICA chops_probe.t LIGHTWEIGHT' : s.lightweight }] };
    if (/^SYSTEM SYNC REPLICA /.test(q)) return s.sync?.(q, params) ?? { rows: [] };
    if (/FROM system\.tables/.test(q) && s.tablesFail)
      return {
        error: {
          code: 1000,
          name: 'POCO_EXCEPTION',
          message: "mysqlxx::ConnectionFailed: Can't connect to MySQL server on 'mysql-legacy' (115) ((nullptr):0)",
        },
      };
    if (/FROM system\.replicas ORDER BY/.test(q)) return { rows: replicas().map((r) => asked(q, r)) };
    if (/SELECT count\(\) AS n FROM system\.replicas/.test(q)) return { rows: [{ n: String(replicas().length) }] };
    if (/FROM system\.asynchronous_metrics/.test(q)) return { rows: s.metrics?.() ?? metrics24() };
    if (/FROM system\.replication_queue/.test(q)) return { rows: s.queue ?? [] };
    if (/FROM system\.zookeeper_connection/.test(q)) return { rows: s.keeper ?? [{ name: 'default', host: 'zk1', port: 2181, is_expired: 0 }] };
    if (/FROM system\.mutations/.test(q)) return { rows: [] };
    if (/FROM system\.processes/.test(q))
      return {
        rows: (s.processes ?? [])
          .filter((p) => !(q.includes('NOT is_cancelled') && p.is_cancelled))
          .filter((p) => !(q.includes("query_id NOT LIKE 'chops-%'") && String(p.query_id).startsWith('chops-')))
          .map(({ is_cancelled: _, ...p }) => p),
      };
    if (/FROM system\.distribution_queue/.test(q)) return { rows: s.distributionQueue ?? [] };
    if (/FROM system\.errors/.test(q)) return { rows: s.errors ?? [] };
    if (/FROM system\.asynchronous_loader/.test(q)) return { rows: [s.loader?.() ?? { total: '4000', pending: '0', failed: '0', error: '' }] };
    if (q === 'SELECT 1 AS one') return { rows: [{ one: 1 }] };
    if (q === 'SELECT version() AS version, uptime() AS uptime') return { rows: [{ version: VERSION_24, uptime: 4242 }] };
    if (/lab\.no_such_table|shop\.missing/.test(q)) return { error: { code: 60, name: 'UNKNOWN_TABLE', message: 'Table shop.missing does not exist' } };
    if (/^KILL QUERY/.test(q)) return { rows: [] };
    return { error: { code: 62, name: 'SYNTAX_ERROR', message: `fake 24.8 server: no answer for ${q.slice(0, 80)}` } };
  };
}
