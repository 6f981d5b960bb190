// The control machine's own SSH files — identity (private key) files and known_hosts files — are
// checked before any connection opens (a missing key must not cost a TCP connect per host and
// end in exit 1), and each file is read once per run, however many hosts share it: 200 hosts
// must not open the same key 200 times (each open is a descriptor while the connections start).
import type { Host } from '../inventory/types.js';
import { printable } from '../inventory/values.js';
import { openRegularFile } from '../regular-file.js';

export interface CredentialProblem {
  /** file:line:col of the host entry. */
  where: string;
  host: string;
  message: string;
  hint: string;
}

/** Why a process cannot open another file, and what to do about it. */
export const DESCRIPTOR_HINT =
  'the process ran out of file descriptors (each host needs about 2): raise the limit, e.g. `ulimit -n 4096` (hard limit: LimitNOFILE= in a systemd unit, or /etc/security/limits.conf), or work on fewer hosts at once (--parallel-hosts)';

export function isDescriptorLimit(code: string | undefined): boolean {
  return code === 'EMFILE' || code === 'ENFILE';
}

type FileCheck = { ok: true; text: string } | { ok: false; code?: string; reason: string };
const files = new Map<string, Promise<FileCheck>>();

/** A regular file's text, read once per run and shared (O_NONBLOCK: a FIFO put there cannot hang chops). */
function readOnce(path: string, opts: { statOnly?: boolean } = {}): Promise<FileCheck> {
  const key = `${opts.statOnly ? 'stat' : 'read'}\0${path}`;
  let p = files.get(key);
  if (!p) {
    p = (async (): Promise<FileCheck> => {
      const f = await openRegularFile(path);
      if (f.notRegular) return { ok: false, reason: f.notRegular === 'a directory' ? 'is a directory, not a file' : 'is not a regular file' };
      if (!f.ok) {
        const code = f.code;
        const reason =
          code === 'ENOENT'
            ? 'does not exist'
            : code === 'EACCES'
              ? 'is not readable by this user'
              : code === 'EISDIR'
                ? 'is a directory'
                : isDescriptorLimit(code)
                  ? `cannot be opened: ${code} (file descriptor limit)`
                  : `cannot be read: ${code ?? f.error}`;
        return { ok: false, code, reason };
      }
      const { handle, size } = f;
      try {
        // known_hosts is read (once) by known-hosts.ts; here only its presence matters.
        if (opts.statOnly) return { ok: true, text: '' };
        if (size > 1024 * 1024) return { ok: false, reason: `is ${size} bytes (more than 1 MiB): not a key file` };
        return { ok: true, text: await handle.readFile('utf8') };
      } catch (err) {
        return { ok: false, code: (err as NodeJS.ErrnoException).code, reason: `cannot be read: ${(err as Error).message}` };
      } finally {
        await handle.close();
      }
    })();
    files.set(key, p);
  }
  return p;
}

/** The identity file's text (read once per run); throws an Error with `.code` and `.reason` when unusable. */
export async function readIdentity(path: string): Promise<string> {
  const r = await readOnce(path);
  if (r.ok) return r.text;
  throw Object.assign(new Error(`${path} ${r.reason}`), { code: r.code, reason: r.reason });
}

/** Forget what was read (a test that rewrites a key file between runs in one process). */
export function forgetCredentialFiles(): void {
  files.clear();
}

/**
 * Every problem with the local SSH files of HOSTS (and their jump hosts) that would make a
 * connection fail: identity_file missing, a directory or unreadable; known_hosts missing while
 * trust_on_first_use is off (every host key would be refused as unknown). Nothing connects.
 */
export async function credentialProblems(hosts: Host[]): Promise<CredentialProblem[]> {
  const out: CredentialProblem[] = [];
  const p = (s: string) => printable(s, { oneLine: true });
  await Promise.all(
    hosts
      .filter((h) => h.connection === 'ssh')
      .map(async (h) => {
        const keys = [
          ['ssh.identity_file', h.ssh.identityFile],
          ['ssh.jump identity_file', h.ssh.jump?.identityFile],
        ] as const;
        for (const [what, file] of keys) {
          if (!file) continue;
          const r = await readOnce(file);
          if (!r.ok) {
            out.push({
              where: h.where,
              host: h.name,
              message: `${what} ${p(file)} ${r.reason}`,
              hint: isDescriptorLimit(r.code)
                ? DESCRIPTOR_HINT
                : 'point ssh.identity_file at the private key file (e.g. ~/.ssh/id_ed25519), or use ssh.agent: true',
            });
          }
        }
        if (!h.ssh.trustOnFirstUse) {
          const r = await readOnce(h.ssh.knownHosts, { statOnly: true });
          if (!r.ok && r.code !== 'ENOENT') {
            out.push({
              where: h.where,
              host: h.name,
              message: `ssh.known_hosts ${p(h.ssh.knownHosts)} ${r.reason}`,
              hint: isDescriptorLimit(r.code) ? DESCRIPTOR_HINT : 'point ssh.known_hosts at an OpenSSH known_hosts file',
            });
          } else if (!r.ok) {
            const port = h.ssh.port === 22 ? '' : `-p ${h.ssh.port} `;
            out.push({
              where: h.where,
              host: h.name,
              message: `ssh.known_hosts ${p(h.ssh.knownHosts)} does not exist, so every host key would be refused as unknown`,
              hint: `after verifying the key out of band: ssh-keyscan ${port}${h.ssh.address} >> ${p(h.ssh.knownHosts)} (or set ssh.trust_on_first_use: true)`,
            });
          }
        }
      }),
  );
  // Inventory order, one line per host and problem.
  const order = new Map(hosts.map((h, i) => [h.name, i]));
  return out.sort((a, b) => order.get(a.host)! - order.get(b.host)!);
}
