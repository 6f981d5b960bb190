// A local Debian package repository for the rolling-upgrade lab test, served to the lab hosts
// over HTTP on the lab bridge (NET.1), the way a production fleet gets its packages from an
// internal mirror. It holds three versions of Debian's ClickHouse packages (clickhouse-server,
// clickhouse-common, clickhouse-client):
//   BASE    18.16.1+ds-7.3+b2      the packages the lab's root filesystem was built with
//   NEXT    18.16.1+ds-7.4~chops1  the same packages rebuilt with a higher Debian revision (and
//                                  the inter-package `Depends: clickhouse-common (= …)` moved along):
//                                  a real upgrade for dpkg and apt (new files, new inodes, held,
//                                  maintainer scripts run), with the same server binary inside
//   BROKEN  18.16.1+ds-7.5~chops1  NEXT whose /usr/sbin/clickhouse-server is replaced by a build
//                                  that dies at start as a binary built for a newer CPU does
//                                  (message, then SIGILL): the unit fails at once
// Built once from the .deb files debootstrap cached for the root filesystem (or `apt-get download`
// on this machine) with dpkg-deb and dpkg-scanpackages, and cached under CHOPS_LAB_CACHE.
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { runProcess } from './process.js';

const CACHE = process.env.CHOPS_LAB_CACHE ?? '/var/cache/chops-lab';
export const PACKAGES = ['clickhouse-common', 'clickhouse-server', 'clickhouse-client'] as const;
export const BASE = '18.16.1+ds-7.3+b2';
export const NEXT = '18.16.1+ds-7.4~chops1';
export const BROKEN = '18.16.1+ds-7.5~chops1';

// The broken server "binary": what a build for a CPU the host does not have does at start.
const BROKEN_SERVER = `#!/bin/sh
# chops lab: a clickhouse-server that cannot start on this machine (rolling-upgrade rollback test)
echo "Poco::Exception. Code: 1000, e.code() = 0, e.displayText() = Illegal instruction: this build of ClickHouse requires a CPU with AVX2" >&2
kill -ILL $$
`;

async function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await runProcess(cmd, args, { cwd });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().slice(-800)}`);
  return r.stdout;
}

/** The base .deb of PKG: from the root filesystem's debootstrap cache, else downloaded on this machine. */
async function baseDeb(pkg: string, work: string): Promise<string> {
  const name = `${pkg}_${BASE.replace(':', '%3a')}_amd64.deb`;
  const cached = path.join(CACHE, 'debs', name);
  if (existsSync(cached)) return cached;
  await sh('apt-get', ['download', `${pkg}=${BASE}`], work);
  return path.join(work, name);
}

/** Rebuild DEB as VERSION (control Version and `(= BASE)` dependencies), optionally changing its tree. */
async function rebuild(deb: string, version: string, out: string, tmp: string, edit?: (root: string) => void): Promise<void> {
  const root = path.join(tmp, `${path.basename(deb)}-${version}`);
  rmSync(root, { recursive: true, force: true });
  await sh('dpkg-deb', ['-R', deb, root]);
  const control = path.join(root, 'DEBIAN/control');
  const text = readFileSync(control, 'utf8')
    .replace(/^Version: .*$/m, `Version: ${version}`)
    .replaceAll(`(= ${BASE})`, `(= ${version})`);
  writeFileSync(control, text);
  if (edit) {
    edit(root);
    // md5sums as dpkg --verify will read them
    await sh('sh', ['-c', `find . -type f ! -path './DEBIAN/*' -printf '%P\\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums`], root);
  }
  // uncompressed: the repository is read over a local bridge, and it rebuilds in seconds
  await sh('dpkg-deb', ['-Znone', '--root-owner-group', '-b', root, out]);
  rmSync(root, { recursive: true, force: true });
}

/**
 * The repository directory (flat layout: *.deb, Packages, Packages.gz, Release), built once and
 * cached; its key is this file's text and the base packages.
 */
export async function buildAptRepo(): Promise<string> {
  const self = readFileSync(new URL(import.meta.url), 'utf8');
  const key = createHash('sha256').update(self).update(BASE).digest('hex').slice(0, 12);
  const dir = path.join(CACHE, `apt-repo-${key}`);
  if (existsSync(path.join(dir, 'Release'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const work = path.join(tmp, '.work');
  mkdirSync(work);
  for (const pkg of PACKAGES) {
    const deb = await baseDeb(pkg, work);
    await sh('cp', [deb, path.join(tmp, `${pkg}_${BASE}_amd64.deb`)]);
    await rebuild(deb, NEXT, path.join(tmp, `${pkg}_${NEXT}_amd64.deb`), work);
    await rebuild(deb, BROKEN, path.join(tmp, `${pkg}_${BROKEN}_amd64.deb`), work, (root) => {
      const bin = path.join(root, 'usr/sbin/clickhouse-server');
      if (existsSync(bin)) writeFileSync(bin, BROKEN_SERVER, { mode: 0o755 });
    });
  }
  rmSync(work, { recursive: true, force: true });
  const packages = await sh('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], tmp);
  writeFileSync(path.join(tmp, 'Packages'), packages);
  await sh('sh', ['-c', 'gzip -9kn Packages'], tmp);
  const sums = ['Packages', 'Packages.gz'].map((f) => {
    const body = readFileSync(path.join(tmp, f));
    return ` ${createHash('sha256').update(body).digest('hex')} ${body.length} ${f}`;
  });
  writeFileSync(
    path.join(tmp, 'Release'),
    `Origin: chops-lab\nLabel: chops-lab\nSuite: chops-lab\nCodename: chops-lab\nArchitectures: amd64\nDate: ${new Date().toUTCString()}\nSHA256:\n${sums.join('\n')}\n`,
  );
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}

export interface AptRepoServer {
  /** `deb [trusted=yes] http://ADDRESS:PORT/ ./` — the line for a lab host's sources.list.d. */
  sourcesLine: string;
  /** Every path the lab hosts asked for, in order (the proof that apt used this repository). */
  requests: string[];
  close(): Promise<void>;
}

/** Serve DIR read-only over HTTP on ADDRESS (the lab bridge's own address) and a free port. */
export function serveAptRepo(dir: string, address: string): Promise<AptRepoServer> {
  const requests: string[] = [];
  const files = new Set(readdirSync(dir));
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').split('?')[0])
      .replace(/^\/+/, '')
      .replace(/^\.\//, '');
    requests.push(name);
    if (!files.has(name) || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404).end();
      return;
    }
    const file = path.join(dir, name);
    res.writeHead(200, { 'content-length': statSync(file).size, 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  server.keepAliveTimeout = 1000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => {
      const port = (server.address() as { port: number }).port;
      resolve({
        sourcesLine: `deb [trusted=yes] http://${address}:${port}/ ./`,
        requests,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections(); // apt's kept-alive connections must not hold the test open
          }),
      });
    });
  });
}
