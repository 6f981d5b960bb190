// The files config-push wants on one node: rendered from templates/config/ (inventory `config:`)
// plus the operator's own directory (--files DIR or config.files). Everything here runs on the
// control machine before anything connects: a bad directory is a UsageError (exit 2), nothing
// changed.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { UsageError } from '../../src/errors.js';
import { show } from '../../src/inventory/values.js';
import type { Host, Inventory } from '../../src/inventory/types.js';
import { renderMacros, MACROS_FILE } from '../../templates/config/macros.js';
import { renderProfiles, PROFILES_FILE } from '../../templates/config/profiles.js';
import { renderRemoteServers, REMOTE_SERVERS_FILE } from '../../templates/config/remote-servers.js';
import type { RenderedFile } from '../../templates/config/types.js';
import { withHeader } from '../../templates/config/xml.js';

/** Where the server's configuration lives on a node. */
export const CONFIG_ROOT = '/etc/clickhouse-server';
/** Where the previous version of every replaced file is kept, per run. */
export const BACKUP_ROOT = '/var/backups/chops-config';

/** A file name chops will write: no path, no leading dot, safe characters, .xml/.yaml/.yml. */
export const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(xml|yaml|yml)$/;
/** An XML element name (cluster and profile names become elements). */
export const XML_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const MAX_FILE_BYTES = 1024 * 1024;
const TEMPLATE_NAMES = new Set([MACROS_FILE, REMOTE_SERVERS_FILE, PROFILES_FILE]);

export const targetPath = (f: { dir: string; name: string }): string => `${CONFIG_ROOT}/${f.dir}/${f.name}`;
export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * The operator's directory: only DIR/config.d/<file> and DIR/users.d/<file>, regular files (no
 * symlinks: nothing can point outside), safe names, .xml/.yaml/.yml, UTF-8, at most 1 MiB.
 * Anything else in it is refused, so what is pushed is exactly what the operator sees.
 */
export function readOperatorDir(dir: string): RenderedFile[] {
  const where = `--files ${show(dir)}`;
  const refuse = (what: string, hint: string): never => {
    throw new UsageError(`${where}: ${what}`, { hint });
  };
  let top: string[] = [];
  try {
    if (!lstatSync(dir).isDirectory()) refuse('is not a directory', 'name a directory holding config.d/ and/or users.d/');
    top = readdirSync(dir).sort();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    refuse(`cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'name an existing, readable directory');
  }
  const out: RenderedFile[] = [];
  for (const sub of top) {
    if (sub !== 'config.d' && sub !== 'users.d')
      refuse(
        `${show(sub)} is neither config.d nor users.d`,
        'put server config fragments in DIR/config.d/ and users/profiles fragments in DIR/users.d/; nothing else',
      );
    const subPath = path.join(dir, sub);
    if (!lstatSync(subPath).isDirectory()) refuse(`${sub} is not a directory (a symlink or a file)`, `make ${sub} a plain directory`);
    for (const name of readdirSync(subPath).sort()) {
      const file = path.join(subPath, name);
      if (!SAFE_FILE.test(name))
        refuse(
          `${sub}/${show(name)}: not a safe config file name`,
          'letters, digits, ".", "_", "-", not starting with a dot, ending in .xml, .yaml or .yml (the server reads nothing else)',
        );
      if (TEMPLATE_NAMES.has(name)) refuse(`${sub}/${name} has the name of a file chops renders from the inventory`, 'rename it');
      const st = lstatSync(file);
      if (!st.isFile())
        refuse(`${sub}/${name} is not a regular file (symlinks are refused: they could point anywhere)`, 'copy the file itself into the directory');
      if (st.size > MAX_FILE_BYTES) refuse(`${sub}/${name} is ${st.size} bytes (limit 1 MiB)`, 'a config fragment is a few KiB; split it');
      const bytes = readFileSync(file);
      const text = bytes.toString('utf8');
      if (!Buffer.from(text, 'utf8').equals(bytes)) refuse(`${sub}/${name} is not UTF-8`, 'save it as UTF-8');
      const source = `operator file ${file}`;
      out.push({ dir: sub as 'config.d' | 'users.d', name, source, content: withHeader(name, text, source) });
    }
  }
  if (out.length === 0) refuse('holds no config.d/ or users.d/ files', 'add e.g. config.d/50-limits.xml');
  return out;
}

/** The files of HOST: templates chosen by `config:`, then the operator's (in that order). */
export function desiredFiles(inv: Inventory, host: Host, operator: RenderedFile[]): RenderedFile[] {
  const c = inv.config;
  const files: RenderedFile[] = [];
  if (c?.macros) files.push(renderMacros({ cluster: host.cluster, shard: host.shardName, replica: host.replicaName }));
  if (c?.remoteServers) {
    files.push(
      renderRemoteServers(
        inv.clusters.map((cl) => ({
          name: cl.name,
          internalReplication: c.internalReplication,
          shards: cl.shards.map((s) => s.replicas.map((r) => ({ host: r.ssh.address, port: c.remoteServersPort ?? r.clickhouse.tcpPort }))),
        })),
      ),
    );
  }
  if (c?.profiles.length) files.push(renderProfiles({ profiles: c.profiles }));
  return [...files, ...operator];
}

/** Checks that need the whole inventory; UsageError before any connection. */
export function checkConfigInputs(inv: Inventory, operator: RenderedFile[]): void {
  const c = inv.config;
  const where = c?.where ?? inv.path;
  if (!c?.macros && !c?.remoteServers && !c?.profiles.length && operator.length === 0)
    throw new UsageError(`${inv.path}: config-push has nothing to push`, {
      hint: 'add `config: {macros: true, remote_servers: true, profiles: {...}}` to the inventory, or pass --files DIR',
    });
  if (c?.remoteServers)
    for (const cl of inv.clusters)
      if (!XML_NAME.test(cl.name))
        throw new UsageError(`${where}: cluster name ${show(cl.name)} cannot be an element of remote_servers`, {
          hint: 'a remote_servers cluster name starts with a letter or _ (letters, digits, _, ., -)',
        });
  for (const p of c?.profiles ?? [])
    if (!XML_NAME.test(p.name))
      throw new UsageError(`${where}: profile name ${show(p.name)} cannot be an XML element`, { hint: 'start it with a letter or _' });
}
