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
