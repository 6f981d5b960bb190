// logrotate for the agent's logs (checked on the node with `logrotate -d` by backup-install).
import type { LogrotateParams } from './types.js';

export function renderLogrotate(p: LogrotateParams): string {
  if (!Number.isInteger(p.rotate) || p.rotate < 1) throw new TypeError(`logrotate rotate must be a positive integer, got ${p.rotate}`);
  return [
    '# chops backup agent logs, written by `chops backup install`',
    `${p.paths.logDir}/*.log {`,
    `    ${p.frequency}`,
    `    rotate ${p.rotate}`,
    '    compress',
    '    delaycompress',
    '    missingok',
    '    notifempty',
    '    create 0640 root root',
    '    su root root',
    '}',
    '',
  ].join('\n');
}
