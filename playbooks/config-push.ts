// config-push: the server configuration files chops owns — rendered from templates/config/ with
// the inventory (`config:` macros, remote_servers, settings profiles) plus the operator's own
// directory (--files DIR: DIR/config.d/*.xml, DIR/users.d/*.xml) — compared with each node's,
// validated on every node by the server's own config preprocessing before any file is replaced,
// written atomically with the previous version kept, then applied the least disruptive way:
//   reload   SYSTEM RELOAD CONFIG, then the new values must show in system.clusters /
//            system.macros / system.settings (tasks/config/reload-table.ts says which sections);
//   restart  the gated rolling restart of rolling-restart, one replica of a shard at a time. The
//            files of a restart node are written while its server is stopped, right before its
//            start: no node ever runs half of a new config, a server's own reloader cannot pick
//            up a restart-only change early, and a failed start rolls back to the old files
//            before the server is started again;
//   unchanged  nothing: no write, no reload, no restart.
// `chops plan config-push` shows the diffs (secrets as ***) and the decision per node.
import { definePlaybook, type Phase } from '../src/engine/playbook.js';
import { UsageError } from '../src/errors.js';
import { renderTable } from '../src/format.js';
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
import { checkConfigInputs, readOperatorDir } from '../tasks/config/files.js';
import { compareStep, onlyForRestart, reloadVerifyStep, validateStep, writeFilesStep } from '../tasks/config/steps.js';

type Params = GateParams & { files?: string };

export default definePlaybook<Params>({
  name: 'config-push',
  description:
    'Push server config files (templates from the inventory `config:` + --files DIR): diff, validate on the node, write atomically, reload or gated restart',
  params: [
    {
      name: 'files',
      type: 'string',
      description: 'a directory of your own config files: DIR/config.d/*.xml and DIR/users.d/*.xml (default: inventory config.files)',
    },
    ...GATE_PARAMS,
  ],
  phases: (params, inventory): Phase<Params>[] => {
    // Everything on this machine is checked before anything connects (exit 2, nothing changed).
    const dir = params.files ?? inventory.config?.files;
    if (params.files !== undefined && params.files === '') throw new UsageError('--files needs a directory');
    const operator = dir ? readOperatorDir(dir) : [];
    if (inventory.hosts.length) checkConfigInputs(inventory, operator); // (`chops graph` draws it without an inventory)
    return [
      {
        name: 'preflight',
        scope: 'once',
        steps: [checkTopologyStep], // inventory == system.macros / system.clusters of every node
      },
      {
        name: 'compare and validate',
        scope: 'each', // every node decided and validated before any node is changed
        steps: [
          compareStep(operator), //  the node's files read, diffed (redacted); reload / restart / unchanged
          validateStep(operator), // a copy of /etc/clickhouse-server with the new files, read by the server's own preprocessing
        ],
      },
      {
        name: 'apply',
        scope: 'rolling',
        replicaServing: clickhouseServing, // on resume: still serving → its gates are checked again
        steps: [
          onlyForRestart(checkPeersStep), //  restart nodes: the other replicas of the shard are healthy
          onlyForRestart(checkIdleStep), //   restart nodes: nothing in flight here
          onlyForRestart({ ...stopClickHouseStep, disruptive: true }), // asks before the run; rollback: start it again
          writeFilesStep(operator), //        backup + atomic write (restart nodes: while stopped); rollback: old files back
          onlyForRestart(startClickHouseStep),
          onlyForRestart(waitHealthyStep), // answers, writable, caught up, sees its shard
          reloadVerifyStep(operator), //      reload nodes: SYSTEM RELOAD CONFIG; all: the new values visible
        ],
      },
    ];
  },
  summary(results) {
    const rows = results
      .filter((r) => r.step === 'reload and verify' && r.data)
      .map((r) => {
        const d = r.data as { decision: string; reloadMs: number; verifyMs: number; stepMs: number; writeMs: number };
        return [r.host, d.decision, `${d.writeMs} ms`, d.decision === 'reload' ? `${d.reloadMs} ms` : '-', `${d.verifyMs} ms`];
      });
    const decided = results.filter((r) => r.step === 'compare files');
    if (!rows.length)
      return decided.length && decided.every((r) => (r.data as { decision?: string })?.decision === 'unchanged')
        ? 'config-push: every node unchanged'
        : undefined;
    return renderTable(['HOST', 'APPLIED BY', 'WRITE', 'SYSTEM RELOAD CONFIG', 'UNTIL VISIBLE'], rows);
  },
});
