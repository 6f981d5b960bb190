// The `config:` section of the inventory (issue 13, `chops run config-push`): which server
// configuration files chops renders from the topology (macros, remote_servers), the settings
// profiles it writes to users.d, and the operator's own directory of files to push. Checked like
// every section (file:line:col, exit 2); the files themselves are checked when a run reads them.
import { absolutePath, bool, field, port, safeName, type MapRule, type ScalarRule } from './rules.js';
import type { SchemaWalker } from './validate.js';
import type { RecordEntry } from './validate.js';

const map = (what: string, fields: MapRule['fields']): MapRule => ({ kind: 'map', what, fields });

/** ClickHouse setting names as the server spells them (max_threads, load_balancing). */
export const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

// A setting's value: a number, true/false (written 1/0) or a one-line string without control
// characters. XML escaping is the template's job; this only refuses what no setting can hold.
const settingValue: ScalarRule<string> = {
  kind: 'scalar',
  expected: 'a setting value (a number, true/false or a string)',
  check(value) {
    if (typeof value === 'boolean') return { ok: true, value: value ? '1' : '0' };
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return { ok: false, hint: 'write a finite number' };
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) return { ok: false, hint: 'quote integers above 2^53 ("18446744073709551615")' };
      return { ok: true, value: String(value) };
    }
    if (typeof value === 'string') {
      if (/[\u0000-\u001f\u007f]/.test(value)) return { ok: false, hint: 'remove the control characters (one line, no tabs)' };
      if (value.length > 4096) return { ok: false, hint: 'at most 4096 characters' };
      return { ok: true, value };
    }
    return { ok: false, hint: 'a number, true/false or a string' };
  },
};

const settingName: ScalarRule<string> = {
  kind: 'scalar',
  expected: 'a ClickHouse setting name (letters, digits, _)',
  check(value) {
    return typeof value === 'string' && SETTING_NAME.test(value) ? { ok: true, value } : { ok: false };
  },
};

export const configSchema = map('config-push settings {macros, remote_servers, profiles, files}', {
  macros: field(bool()),
  remote_servers: field(bool()),
  internal_replication: field(bool()),
  remote_servers_port: field(port()),
  files: field(absolutePath()),
  profiles: field({
    kind: 'record',
    what: 'a map of settings profile names to {setting: value}',
    key: safeName('a profile name'),
    value: { kind: 'record', what: 'a map of setting names to values', key: settingName, value: settingValue },
  }),
});

export interface ConfigSettings {
  /** Render config.d/chops-macros.xml (cluster, shard, replica of each host). */
  macros: boolean;
  /** Render config.d/chops-remote-servers.xml (every cluster of the inventory). */
  remoteServers: boolean;
  internalReplication: boolean;
  /** Port in remote_servers; default: each replica's clickhouse.tcp_port. */
  remoteServersPort?: number;
  /** The operator's directory of files (config.d/, users.d/); `--files` overrides it. */
  files?: string;
  /** Settings profiles for users.d/chops-profiles.xml, in file order. */
  profiles: { name: string; settings: { name: string; value: string }[] }[];
  /** file:line:col of the section, for messages. */
  where: string;
}

type Raw = Record<string, unknown>;

export function buildConfigSettings(raw: Raw | undefined, walker: SchemaWalker, file: string): ConfigSettings | undefined {
  if (!raw) return undefined;
  const pos = walker.positions.get(raw) ?? { line: 1, col: 1 };
  const profiles = ((raw.profiles ?? []) as RecordEntry[]).map((p) => ({
    name: p.name,
    settings: ((p.value ?? []) as RecordEntry[]).map((s) => ({ name: s.name, value: s.value as string })).filter((s) => s.value !== undefined),
  }));
  return {
    macros: (raw.macros as boolean | undefined) ?? false,
    remoteServers: (raw.remote_servers as boolean | undefined) ?? false,
    internalReplication: (raw.internal_replication as boolean | undefined) ?? true,
    ...(raw.remote_servers_port !== undefined ? { remoteServersPort: raw.remote_servers_port as number } : {}),
    ...(raw.files !== undefined ? { files: raw.files as string } : {}),
    profiles,
    where: `${file}:${pos.line}:${pos.col}`,
  };
}
