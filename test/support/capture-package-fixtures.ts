// Captures the fixtures of test/unit/facts/packages/ from a host of a running ClickHouse lab,
// with the lab repository of apt-repo.ts served to it: the host goes to BASE (unheld), then NEXT
// is installed without a restart (the policy chops uses), then the server is restarted and the
// packages held — the output of each fact's command at each point is written to a file.
//
//   node --import tsx test/support/capture-package-fixtures.ts LAB HOST   (under the heavy-lab lock)
import { writeFileSync } from 'node:fs';
import { labOpen } from '../lab/lab.js';
import { labSh } from './lab.js';
import { BASE, NEXT, PACKAGES, buildAptRepo, serveAptRepo } from './apt-repo.js';
import { packagesCommand } from '../../facts/system/packages.js';
import { serverProcessCommand } from '../../facts/system/server-process.js';

const [labName, host] = process.argv.slice(2);
const lab = labOpen(labName);
const out = (name: string, text: string) => writeFileSync(new URL(`../unit/facts/packages/${name}`, import.meta.url), text);
const repo = await serveAptRepo(await buildAptRepo(), `${lab.net}.1`);
const policy = `printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d`;
const install = (v: string) =>
  `DEBIAN_FRONTEND=noninteractive apt-get -q -y --allow-downgrades --allow-change-held-packages install ${PACKAGES.map((p) => `${p}=${v}`).join(' ')} >/dev/null`;
const proc = serverProcessCommand({ clickhouse: { service: 'clickhouse-server' } } as never);
try {
  await labSh(
    lab,
    host,
    `set -e; [ ! -e /etc/apt/sources.list ] || mv /etc/apt/sources.list /etc/apt/sources.list.chops-test-disabled
echo '${repo.sourcesLine}' > /etc/apt/sources.list.d/chops-lab.list; apt-get -q update >/dev/null
${policy}; ${install(BASE)}; apt-mark unhold ${PACKAGES.join(' ')} >/dev/null; rm -f /usr/sbin/policy-rc.d
systemctl restart clickhouse-server; sleep 3`,
  );
  out('packages-base.txt', await labSh(lab, host, packagesCommand()));
  await labSh(lab, host, `set -e; ${policy}; ${install(NEXT)}; rm -f /usr/sbin/policy-rc.d`);
  out('process-after-install.txt', await labSh(lab, host, proc));
  await labSh(lab, host, `set -e; apt-mark hold ${PACKAGES.join(' ')} >/dev/null; systemctl restart clickhouse-server; sleep 3`);
  out('process-restarted.txt', await labSh(lab, host, proc));
  out('packages-upgraded.txt', await labSh(lab, host, packagesCommand()));
} finally {
  await repo.close();
}
