// From checked file sections to the typed topology: merges defaults into each host, numbers the
// shards and replicas, and runs the checks that need the whole file (unique names, jump hosts).

import { joinKey, type SourcePos } from './problems.js';
import { printable, show } from './values.js';
import type { MapRule, RuleContext } from './rules.js';
import { overridableSections, stateSchema } from './schema.js';
import type { ClickHouseSettings, Cluster, GateSettings, Host, SshSettings } from './types.js';
import type { RecordEntry, SchemaWalker } from './validate.js';

type Section = Record<string, unknown>;
type SectionName = keyof typeof overridableSections;

interface RawReplica extends Partial<Record<SectionName, Section>> {
  name?: string;
  address?: string;
  connection?: 'ssh' | 'local';
  replicaName?: string;
  vars?: Section;
}
interface RawShard {
  name?: string;
  replicas?: (RawReplica | undefined)[];
}
interface RawCluster {
  shards?: (RawShard | undefined)[];
}
export interface RawInventory {
  version?: 1;
  defaults?: Partial<Record<SectionName | 'vars', Section>>;
  state?: Section;
  clusters?: RecordEntry[];
}

type JumpSettings = NonNullable<SshSettings['jump']>;

export interface Topology {
  clusters: Cluster[];
  hosts: Host[];
  stateDir: string;
  logRetentionDays: number;
}

/** Builds the topology; problems found here are added to the walker's list. */
export function buildTopology(raw: RawInventory, walker: SchemaWalker, file: string, ctx: RuleContext): Topology {
  const builtIn = {
    ssh: schemaDefaults(overridableSections.ssh, ctx),
    clickhouse: schemaDefaults(overridableSections.clickhouse, ctx),
    gates: schemaDefaults(overridableSections.gates, ctx),
  };
  // Checks on a host whose own entry (or the defaults) already failed would only repeat that failure.
  // Every key path that has a problem at or under it, indexed once: looking each replica up in the
  // list of problems would be quadratic (20 000 replicas with a problem each).
  const failedKeys = new Set<string>();
  const indexProblems = (from: number) => {
    for (const p of walker.problems.slice(from)) {
      for (let i = 0; i < p.key.length; i++) if (p.key[i] === '.' || p.key[i] === '[') failedKeys.add(p.key.slice(0, i));
      failedKeys.add(p.key);
    }
  };
  indexProblems(0);
  const failedUnder = (prefix: string) => failedKeys.has(prefix);
  const defaultsFailed = failedUnder('defaults');

  const clusters: Cluster[] = [];
  const hosts: Host[] = [];
  const firstSeen = new Map<string, { at: SourcePos; key: string }>();
  const jumps: { host: Host; jump: unknown; fromDefaults: boolean; key: string; at: SourcePos }[] = [];

  for (const entry of raw.clusters ?? []) {
    const cluster: Cluster = { name: entry.name, shards: [] };
    clusters.push(cluster);
    const rawCluster = (entry.value ?? {}) as RawCluster;
    (rawCluster.shards ?? []).forEach((rawShard, shardIdx) => {
      if (!rawShard) return;
      const index = shardIdx + 1;
      const shard = { index, name: rawShard.name ?? String(index), replicas: [] as Host[] };
      cluster.shards.push(shard);
      (rawShard.replicas ?? []).forEach((r, replicaIdx) => {
        if (!r || r.name === undefined) return;
        const key = joinKey(joinKey(joinKey(joinKey(joinKey('clusters', entry.name), 'shards'), shardIdx), 'replicas'), replicaIdx);
        const at = walker.positions.get(r) ?? entry.at;

        const seen = firstSeen.get(r.name);
        if (seen) {
          walker.add(
            joinKey(key, 'host'),
            at,
            `duplicate host name ${show(r.name)}: also at ${printable(file, { oneLine: true })}:${seen.at.line}:${seen.at.col} (${seen.key})`,
            'host names are unique across the whole file; rename one',
          );
          failedKeys.add(key);
        } else firstSeen.set(r.name, { at, key });

        const host = assembleHost(r, { cluster: entry.name, shard, replica: replicaIdx + 1 }, raw, builtIn);
        host.where = `${file}:${at.line}:${at.col}`;
        shard.replicas.push(host);
        hosts.push(host);
        if (failedUnder(key) || defaultsFailed) return;

        if (host.connection === 'ssh' && r.address === undefined) {
          walker.add(
            joinKey(key, 'address'),
            at,
            'missing: an ssh host needs an address',
            'add `address: DNS_NAME_OR_IP`, or `connection: local` to run on this machine',
          );
        }
        if (host.connection === 'ssh' && !host.ssh.identityFile && !host.ssh.agent) {
          walker.add(joinKey(key, 'ssh'), at, 'no SSH credentials', 'set ssh.identity_file, or ssh.agent: true to use $SSH_AUTH_SOCK');
        }
        const jump = r.ssh?.jump ?? raw.defaults?.ssh?.jump;
        const fromDefaults = r.ssh?.jump === undefined;
        if (jump !== undefined) jumps.push({ host, jump, fromDefaults, key: joinKey(joinKey(key, 'ssh'), 'jump'), at });
      });
    });
  }

  // Jump hosts may name hosts further down the file, so they resolve once all hosts are known.
  const byName = new Map(hosts.map((h) => [h.name, h]));
  // A default jump host naming an inventory host does not apply to that bastion itself.
  const effective = jumps.filter(({ host, jump, fromDefaults }) => !(fromDefaults && jump === host.name));
  // One hop only: chops opens the bastion's connection and forwards through it. A bastion that
  // itself needs a bastion (a chain, or a loop h1 -> h2 -> h1) is refused, not silently flattened.
  const jumping = new Map(effective.map((j) => [j.host.name, j.jump]));
  for (const { host, jump, key, at } of effective) {
    if (typeof jump === 'string' && jumping.has(jump) && jump !== host.name) {
      const next = jumping.get(jump);
      const loop = next === host.name;
      walker.add(
        key,
        at,
        loop
          ? `jump loop: ${host.name} goes through ${jump}, which goes through ${host.name}`
          : `jump chain: ${jump} itself goes through ${typeof next === 'string' ? next : 'another jump host'}; chops supports one jump host per connection`,
        'give the bastion a direct address (no ssh.jump of its own), or use an inline {address, port, user} jump',
      );
      continue;
    }
    const resolved = resolveJump(host, jump, byName);
    if (typeof resolved === 'string') walker.add(key, at, resolved, 'name an ssh host of this inventory, or write {address: ..., port: ..., user: ...}');
    else host.ssh.jump = resolved;
  }

  const state = { ...schemaDefaults(stateSchema, ctx), ...raw.state };
  return { clusters, hosts, stateDir: state.stateDir as string, logRetentionDays: state.logRetentionDays as number };
}

function assembleHost(
  r: RawReplica,
  place: { cluster: string; shard: { index: number; name: string }; replica: number },
  raw: RawInventory,
  builtIn: Record<SectionName, Section>,
): Host {
  // Key-by-key merge per section: a host overriding ssh.user keeps the default ssh.port.
  const merged = (s: SectionName): Section => ({ ...builtIn[s], ...raw.defaults?.[s], ...r[s] });
  const connection = r.connection ?? (r.name === 'localhost' && r.address === undefined ? 'local' : 'ssh');
  const ssh = { address: r.address ?? 'localhost', ...merged('ssh') } as unknown as SshSettings;
  delete ssh.jump; // set by resolveJump once every host is known
  return {
    name: r.name!,
    cluster: place.cluster,
    shard: place.shard.index,
    shardName: place.shard.name,
    replica: place.replica,
    replicaName: r.replicaName ?? r.name!,
    connection,
    ssh,
    clickhouse: merged('clickhouse') as unknown as ClickHouseSettings,
    gates: merged('gates') as unknown as GateSettings,
    // Cloned: tasks get their own vars, and a change on one host cannot leak into another.
    vars: structuredClone(deepMerge(raw.defaults?.vars ?? {}, r.vars ?? {})),
    where: '',
  };
}

/** The jump settings, or a message saying why the jump host is unusable. */
function resolveJump(host: Host, jump: unknown, byName: Map<string, Host>): JumpSettings | string {
  const own = { user: host.ssh.user, identityFile: host.ssh.identityFile, agent: host.ssh.agent };
  if (typeof jump === 'string') {
    const target = byName.get(jump);
    if (!target) return `no host named ${show(jump)} in this inventory`;
    if (target === host) return 'a host cannot be its own jump host';
    if (target.connection !== 'ssh') return `jump host "${jump}" is not reached over ssh`;
    const { address, port, user, identityFile, agent } = target.ssh;
    return { address, port, user, agent, ...(identityFile ? { identityFile } : {}) };
  }
  // Inline jump: unset fields fall back to port 22 and this host's own login.
  const inline = jump as Partial<JumpSettings> & { address: string };
  const merged = { port: 22, ...own, ...inline };
  if (merged.identityFile === undefined) delete merged.identityFile;
  return merged as JumpSettings;
}

/** The schema's built-in defaults, converted exactly as if they had been written in the file. */
function schemaDefaults(rule: MapRule, ctx: RuleContext): Section {
  const out: Section = {};
  for (const [name, f] of Object.entries(rule.fields)) {
    if (f.default === undefined || f.rule.kind !== 'scalar') continue;
    const checked = f.rule.check(f.default, String(f.default), ctx);
    if (!checked.ok) throw new Error(`schema default of ${name} does not pass its own rule`);
    out[f.as ?? name] = checked.value;
  }
  return out;
}

function isPlainObject(v: unknown): v is Section {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Maps merge key by key at every depth; anything else (lists included) is replaced. */
export function deepMerge(base: Section, override: Section): Section {
  const out: Section = {};
  for (const [k, v] of [...Object.entries(base), ...Object.entries(override)]) {
    const prev = Object.hasOwn(out, k) ? out[k] : undefined;
    const value = isPlainObject(prev) && isPlainObject(v) ? deepMerge(prev, v) : v;
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
