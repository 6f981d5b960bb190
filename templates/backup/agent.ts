// The backup agent installed on each node: typed settings in front of the fixed body
// (agent-body.ts). Settings are plain values quoted with shq; no secret is ever one of them.
import { shq } from '../../src/quote.js';
import { AGENT_BODY } from './agent-body.js';
import type { AgentParams } from './types.js';

export function renderAgent(p: AgentParams): string {
  const settings: Array<[string, string | number]> = [
    ['HOST_NAME', p.hostName],
    ['CLUSTER', p.cluster],
    ['SHARD', p.shard],
    ['ENABLED', p.enabled ? 1 : 0],
    ['ACTIVE_HOST', p.activeHost],
    ['NAME_PREFIX', p.namePrefix],
    ['CHB_BIN', p.paths.binary],
    ['CHB_CONFIG', p.paths.config],
    ['LOCK_FILE', p.paths.lockFile],
    ['LOCK_WAIT', p.lockWaitSeconds],
    ['CMD_TIMEOUT', p.commandTimeoutSeconds],
    ['LIST_TIMEOUT', p.listTimeoutSeconds],
    ['STATE_DIR', p.paths.stateDir],
    ['LOG_DIR', p.paths.logDir],
    ['KEEP_LOCAL', p.keepLocal],
    ['KEEP_REMOTE', p.keepRemote],
    ['FULL_INTERVAL', p.fullIntervalSeconds],
    ['MAX_CHAIN', p.maxChain],
  ];
  for (const [k, v] of settings) {
    if (typeof v === 'number' && (!Number.isInteger(v) || v < 0)) throw new TypeError(`agent setting ${k} must be a non-negative integer, got ${v}`);
  }
  return [
    '#!/bin/sh',
    '# chops backup agent: FULL/DIFF backups with clickhouse-backup, one node lock, a status file.',
    '# Installed by `chops backup install`; do not edit here (the next install rewrites it).',
    `# usage: ${p.paths.agent} full|diff    exit codes: see the list at the end of this header`,
    '# 0 ok  2 usage  3 disabled here  4 node lock busy  5 create failed  6 upload failed',
    '# 7 retention failed  8 clickhouse-backup unusable  9 timeout  10 remote list unreadable  11 signal',
    ...settings.map(([k, v]) => `${k}=${shq(v)}`),
    AGENT_BODY,
  ].join('\n');
}
