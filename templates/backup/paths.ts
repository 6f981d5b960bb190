// Where the agent's files live on a node. One definition for the templates, the install
// playbook, `chops backup run|status|list`, the node lock and facts/backup/status.ts.
import type { AgentPaths } from './types.js';

export const AGENT_PATHS: AgentPaths = {
  agent: '/usr/local/sbin/chops-backup-agent',
  config: '/etc/clickhouse-backup/config.yml',
  cronFile: '/etc/cron.d/chops-backup',
  logrotateFile: '/etc/logrotate.d/chops-backup',
  logDir: '/var/log/clickhouse-backup',
  stateDir: '/var/lib/chops-backup',
  lockFile: '/run/lock/chops-node.lock',
  binary: 'clickhouse-backup',
};
