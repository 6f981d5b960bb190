// Health gates between replicas (/work/shared/notes/health-gates.md), one module each:
//   gates/poll.ts        the poll loop, its deadline, and plan mode (the one place)
//   gates/peers.ts       before a stop: the other replicas of the shard are healthy and caught up
//   gates/idle.ts        before a stop: the replica itself has nothing in flight
//   gates/healthy.ts     after a start: answers, writable, caught up (sustained), sees its shard
//   gates/catch-up.ts    how it waits: SYNC REPLICA … LIGHTWEIGHT and fast metric polls where the probe finds them
//   gates/error-log.ts   new errors since the start (system.errors, or the 18.16 error log)
//   gates/distributed.ts pending Distributed sends (system.distribution_queue, or 18.16 .bin files)
//   topology.ts          the inventory ↔ servers cross-check (not a gate)
// Thresholds: src/gates/thresholds.ts. The healthy-replica definition: facts/clickhouse/replicas.ts.
// Which path by server: facts/clickhouse/capabilities.ts and docs/clickhouse-versions.md.
export { checkPeersBeforeStop, type PeerReport } from './gates/peers.js';
export {
  checkSelfBeforeStop,
  classifyQueue,
  parseQueueEntries,
  processesQuery,
  OLD_QUEUE_ENTRY_SECONDS,
  type QueueEntry,
  type SelfReport,
} from './gates/idle.js';
export { waitReplicaHealthy, type HealthyReport } from './gates/healthy.js';
export { newErrorLines, newErrors, systemErrors, parseSystemErrors } from './gates/error-log.js';
export { escapeForFileName, distributedDirs, pendingDistributedFiles, parseFindOutput, parseDistributionQueue } from './gates/distributed.js';
export { runGate, holdState, GateRun, type GateCheck, type GateOutcome, type PollOptions } from './gates/poll.js';
export { checkTopology, type TopologyFinding } from './topology.js';
export { summarizeReplicas, replicaProblems, type ReplicaRow, type ReplicaSummary } from '../../facts/clickhouse/replicas.js';
