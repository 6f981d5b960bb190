// After a reload (or a restart): is the new configuration what the server uses? A gate on the
// poll loop of the health gates (tasks/clickhouse/gates/poll.ts), one check per changed section:
//   clusters  system.clusters has exactly the shards/replicas (host, port) of the new file
//   macros    system.macros has the new macros
//   profiles  system.settings, queried under each profile, shows each new value
//   loaded    (sections no system table shows) the preprocessed configuration the server
//             writes after each successful load is newer than the file and lists it
// Missing information never passes: an unreadable file, an empty answer or a query error is a
// failed poll, and the deadline (gates.wait_timeout) fails the step naming what was seen.
import type { StepContext } from '../../src/engine/playbook.js';
import { chClient } from '../../src/clickhouse/client.js';
import { sql } from '../../src/clickhouse/sql.js';

import { GateRun, type GateCheck } from '../clickhouse/gates/poll.js';
import { child, childrenNamed, parseXml, type XmlElement } from './xml-tree.js';
import { CONFIG_ROOT } from './files.js';
import type { Tree, Verify } from './reload-table.js';

export interface FileToVerify {
  dir: 'config.d' | 'users.d';
  name: string;
  content: string;
  verify: Verify[];
}

const norm = (v: string): string => {
  const t = v.trim();
  if (t === 'true') return '1';
  if (t === 'false') return '0';
  return t !== '' && Number.isFinite(Number(t)) ? String(Number(t)) : t;
};

/** Expected system.clusters rows of a remote_servers section: "cluster shard replica host:port". */
export function expectedClusters(root: XmlElement): { clusters: string[]; rows: string[] } {
  const rs = child(root, 'remote_servers');
  const clusters: string[] = [];
  const rows: string[] = [];
  for (const c of rs?.children ?? []) {
    if ('remove' in c.attrs) continue;
    clusters.push(c.name);
    childrenNamed(c, 'shard').forEach((s, si) => {
      childrenNamed(s, 'replica').forEach((r, ri) => {
        rows.push(`${c.name} ${si + 1} ${ri + 1} ${child(r, 'host')?.text ?? ''}:${child(r, 'port')?.text ?? '9000'}`);
      });
    });
  }
  return { clusters, rows: rows.sort() };
}

export function expectedMacros(root: XmlElement): Record<string, string> {
  return Object.fromEntries((child(root, 'macros')?.children ?? []).map((m) => [m.name, m.text]));
}

export function expectedProfiles(root: XmlElement): { profile: string; settings: Record<string, string> }[] {
  return (child(root, 'profiles')?.children ?? []).map((p) => ({ profile: p.name, settings: Object.fromEntries(p.children.map((s) => [s.name, s.text])) }));
}

const rootOf = (tree: Tree) => (tree === 'users' ? 'users.xml' : 'config.xml');

async function checkFile(ctx: StepContext<any>, f: FileToVerify): Promise<GateCheck> {
  const ch = await chClient(ctx.run, ctx.host.def);
  const seen: string[] = [];
  let root: XmlElement | undefined;
  if (f.verify.some((v) => v !== 'loaded')) root = parseXml(f.content);
  for (const v of new Set(f.verify)) {
    if (v === 'clusters') {
      const want = expectedClusters(root!);
      if (!want.clusters.length) continue;
      const rows = await ch.query<{ cluster: string; shard_num: number; replica_num: number; host_name: string; port: number }>(
        sql`SELECT cluster, shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster IN (${want.clusters}) ORDER BY cluster, shard_num, replica_num`,
      );
      const got = rows.map((r) => `${r.cluster} ${r.shard_num} ${r.replica_num} ${r.host_name}:${r.port}`).sort();
      if (JSON.stringify(got) !== JSON.stringify(want.rows))
        return { ok: false, value: `system.clusters: ${got.length} rows, want ${want.rows.length} (${f.name})` };
      seen.push(`system.clusters ${want.clusters.join(',')}: ${got.length} replicas`);
    } else if (v === 'macros') {
      const want = expectedMacros(root!);
      const rows = await ch.query<{ macro: string; substitution: string }>('SELECT macro, substitution FROM system.macros');
      const got = Object.fromEntries(rows.map((r) => [r.macro, r.substitution]));
      const wrong = Object.entries(want).filter(([k, val]) => got[k] !== val);
      if (wrong.length) return { ok: false, value: `system.macros: ${wrong.map(([k, val]) => `${k}=${got[k] ?? '(none)'} (want ${val})`).join(', ')}` };
      seen.push(`system.macros: ${Object.keys(want).length} ok`);
    } else if (v === 'profiles') {
      for (const p of expectedProfiles(root!)) {
        const names = Object.keys(p.settings);
        if (!names.length) continue;
        const rows = await ch.query<{ name: string; value: string }>(sql`SELECT name, value FROM system.settings WHERE name IN (${names})`, {
          settings: { profile: p.profile },
        });
        const got = Object.fromEntries(rows.map((r) => [r.name, r.value]));
        const wrong = names.filter((n) => got[n] === undefined || norm(got[n]) !== norm(p.settings[n]));
        if (wrong.length)
          return {
            ok: false,
            value: `system.settings under profile ${p.profile}: ${wrong.map((n) => `${n}=${got[n] ?? '(unknown setting)'} (want ${p.settings[n]})`).join(', ')}`,
          };
        seen.push(`profile ${p.profile}: ${names.length} setting(s)`);
      }
    } else {
      const loaded = await preprocessedHasFile(ctx, f);
      if (!loaded.ok) return loaded;
      seen.push(loaded.value);
    }
  }
  return { ok: true, value: seen.join('; ') || `${f.name}: nothing to check` };
}

/**
 * The server writes its merged configuration after every successful load (start-up and each
 * reload): <data_dir>/preprocessed_configs/<root> (18.16 and later). Newer than our file and
 * naming it among "Files used to generate this file": the server has loaded it.
 */
async function preprocessedHasFile(ctx: StepContext<any>, f: FileToVerify): Promise<GateCheck> {
  const target = `${CONFIG_ROOT}/${f.dir}/${f.name}`;
  const root = rootOf(f.dir === 'users.d' ? 'users' : 'config');
  const pre = `${ctx.host.def.clickhouse.dataDir}/preprocessed_configs/${root}`;
  const r = await ctx.host.probe({
    nothrow: true,
  })`stat -c %.3Y -- ${target} ${pre} 2>&1; grep -c -F -- ${target} ${pre} 2>/dev/null || true`;
  const [fileMt, preMt, count] = r.stdout.trim().split('\n');
  const a = Number(fileMt);
  const b = Number(preMt);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return { ok: false, value: `preprocessed ${root} not readable: ${r.stdout.trim().split('\n').join(' ')}` };
  if (b < a) return { ok: false, value: `preprocessed ${root} older than ${f.dir}/${f.name} (not reloaded yet)` };
  if (!(Number(count) > 0)) return { ok: false, value: `preprocessed ${root} does not list ${f.dir}/${f.name}` };
  return { ok: true, value: `${f.dir}/${f.name} loaded (preprocessed ${root})` };
}

/** Poll until every file's new values are visible; throws a GateError at the deadline. */
export async function waitConfigVisible(ctx: StepContext<any>, files: FileToVerify[]): Promise<{ value: string; elapsedMs: number }> {
  const g = new GateRun(ctx as StepContext);
  const out = await g.poll('new config visible', { hint: 'the files are in place: check the server log for why it does not use them' }, async () => {
    const values: string[] = [];
    for (const f of files) {
      const c = await checkFile(ctx, f);
      if (!c.ok) return c;
      values.push(c.value);
    }
    return { ok: true, value: values.join('; ') };
  });
  return { value: out.value, elapsedMs: out.elapsedMs };
}
