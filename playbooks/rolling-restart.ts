// rolling-restart: restart clickhouse-server on every selected replica without ever taking a
// shard's last healthy replica down. Shards in parallel (--parallel-shards), the replicas of a
// shard one at a time; each replica is stopped only when its peers are healthy and caught up and
// it has nothing in flight, and the next one waits until it is a caught-up replica again.
// A replica whose step fails after the stop is started again (rollback). Gate thresholds come
// from the inventory; the --max-delay, --wait-timeout, ... flags override them for one run.
import { definePlaybook, type Phase } from '../src/engine/playbook.js';
import {
  checkTopologyStep,
  checkPeersStep,
  checkIdleStep,
  stopClickHouseStep,
  startClickHouseStep,
  waitHealthyStep,
  clickhouseServing,
} from '../tasks/clickhouse/replica-steps.js';
import { GATE_PARAMS, type GateParams } from '../tasks/clickhouse/gate-params.js';

const runbook: Phase[] = [
  {
    name: 'preflight',
    scope: 'once',
    steps: [checkTopologyStep], // inventory == system.macros/system.clusters of every node
  },
  {
    name: 'restart replicas',
    scope: 'rolling',
    replicaServing: clickhouseServing, // on resume: still serving → its gates are checked again
    steps: [
      checkPeersStep, //       the other replicas of the shard are up, writable and caught up
      checkIdleStep, //        this replica: empty queue, no mutations, no pending sends, no queries
      { ...stopClickHouseStep, disruptive: true }, // asks before the run; rollback: start it again
      startClickHouseStep, //  remembers when, for "no new errors since"
      waitHealthyStep, //      answers, writable, caught up, sees its shard
    ],
  },
];

export default definePlaybook<GateParams>({
  name: 'rolling-restart',
  description: 'Restart clickhouse-server replica by replica (shards in parallel), with health gates before each stop and after each start',
  params: GATE_PARAMS,
  phases: () => runbook, // thresholds: inventory `gates:`, then the flags (gatesFor in each gate)
});
