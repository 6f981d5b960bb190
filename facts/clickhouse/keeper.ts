// Embedded ClickHouse Keeper: on 22.x-25.x Keeper often runs inside some of the servers. The
// Keeper* rows of system.asynchronous_metrics exist only where it is embedded (ClickHouse
// src/Coordination/KeeperAsynchronousMetrics.cpp, updateKeeperInformation: KeeperIsLeader,
// KeeperIsFollower, KeeperIsObserver, KeeperIsStandalone; KeeperFollowers and
// KeeperSyncedFollowers are filled on the leader only). 18.16 has none: ZooKeeper is external.
import { defineQueryFact } from '../../src/fact.js';

export interface KeeperState {
  member: boolean;
  role?: 'leader' | 'follower' | 'observer' | 'standalone' | 'none';
  /** On the leader: followers, and those in sync. */
  followers?: number;
  syncedFollowers?: number;
}

export function parseKeeperState(rows: Record<string, unknown>[]): KeeperState {
  if (rows.length === 0) return { member: false };
  const m = new Map(rows.map((r) => [String(r.metric), Number(r.value)]));
  const role = m.get('KeeperIsLeader')
    ? 'leader'
    : m.get('KeeperIsFollower')
      ? 'follower'
      : m.get('KeeperIsObserver')
        ? 'observer'
        : m.get('KeeperIsStandalone')
          ? 'standalone'
          : 'none';
  return {
    member: true,
    role,
    ...(role === 'leader' ? { followers: m.get('KeeperFollowers') ?? 0, syncedFollowers: m.get('KeeperSyncedFollowers') ?? 0 } : {}),
  };
}

export const keeperState = defineQueryFact({
  name: 'embedded keeper',
  query: () =>
    `SELECT metric, value FROM system.asynchronous_metrics WHERE metric IN ('KeeperIsLeader', 'KeeperIsFollower', 'KeeperIsObserver', 'KeeperIsStandalone', 'KeeperFollowers', 'KeeperSyncedFollowers')`,
  parse: (rows) => parseKeeperState(rows),
  timeoutMs: 10_000,
});

/**
 * The server's own connection to ZooKeeper/Keeper, for messages about read-only tables:
 * system.zookeeper_connection (23.x+; exists only where ZooKeeper is configured; columns name,
 * host, port, is_expired from its first version: docs "system.zookeeper_connection",
 * src/Storages/System/StorageSystemZooKeeperConnection.cpp). An empty answer means no connection.
 */
export interface KeeperConnection {
  name: string;
  host: string;
  port: number;
  expired: boolean;
}

export function parseKeeperConnections(rows: Record<string, unknown>[]): KeeperConnection[] {
  return rows.map((r) => ({ name: String(r.name), host: String(r.host), port: Number(r.port), expired: Number(r.is_expired) !== 0 }));
}

export const keeperConnections = defineQueryFact({
  name: 'system.zookeeper_connection',
  query: () => 'SELECT name, host, port, is_expired FROM system.zookeeper_connection ORDER BY name',
  parse: (rows) => parseKeeperConnections(rows),
  timeoutMs: 10_000,
});

/** "Keeper connection: default → zk1:2181 (session expired)", or that there is none. */
export function keeperConnectionText(cs: KeeperConnection[]): string {
  if (cs.length === 0) return 'Keeper connection: none (system.zookeeper_connection is empty: the server is not connected to ZooKeeper/Keeper)';
  return `Keeper connection: ${cs.map((c) => `${c.name} → ${c.host}:${c.port}${c.expired ? ' (session expired)' : ''}`).join(', ')}`;
}
