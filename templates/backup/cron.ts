// The cron.d file of the agent, and the exact command line and environment cron runs it with
// (`chops backup run` uses the same two, so a manual run is a cron run).
import type { AgentPaths, CronParams } from './types.js';

/** The environment cron gives the job: the variables set at the top of the cron.d file, plus cron's own. */
export function cronEnvironment(): Record<string, string> {
  return { SHELL: '/bin/sh', PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LOGNAME: 'root', USER: 'root' };
}

/** The command of a cron line (no secret, no redirection: the agent writes its own log). */
export function cronCommand(paths: AgentPaths, type: 'full' | 'diff'): string {
  return `${paths.agent} ${type}`;
}

export function renderCron(p: CronParams): string {
  const env = cronEnvironment();
  const off = p.enabled ? '' : '# ';
  return [
    '# chops backup agent schedule, written by `chops backup install` (do not edit here).',
    p.enabled ? '# FULL and DIFF backups; the agent serialises runs with the node lock.' : `# DISABLED on this node: ${p.disabledReason}`,
    `SHELL=${env.SHELL}`,
    `PATH=${env.PATH}`,
    'MAILTO=""',
    `${off}${p.full} root ${cronCommand(p.paths, 'full')}`,
    `${off}${p.diff} root ${cronCommand(p.paths, 'diff')}`,
    '',
  ].join('\n');
}
