// Which parts of the server's configuration ClickHouse applies at runtime, and which need a
// restart. One row per top-level section; a section that is not here needs a restart (chops
// never assumes a reload). Sources (ClickHouse programs/server/Server.cpp, src/Common/Config/
// ConfigReloader.cpp, docs "Configuration Files" and "SYSTEM RELOAD CONFIG"):
//   - the MAIN config (config.xml + config.d/) is re-read by the server's ConfigReloader (it
//     polls the files every few seconds; `SYSTEM RELOAD CONFIG` forces it). Its callback applies
//     only some sections: remote_servers (Context::setClustersConfig, every version, 18.16
//     included), macros (Context::setMacros: on the 18.16 lab a new macro is in system.macros
//     right after SYSTEM RELOAD CONFIG), max_table_size_to_drop / max_partition_size_to_drop.
//     Replicated tables expand {shard}/{replica} when they are attached, so a changed shard or
//     replica macro would re-identify a live replica: chops renders them from the inventory and
//     its topology preflight refuses an inventory that disagrees with system.macros. Listen
//     addresses, ports, paths, zookeeper (reloaded only since 20.x), storage, logger (its reload
//     is disabled in the source: "FIXME logging-related things need synchronization") and the
//     rest are read once at start-up: restart.
//   - the USERS config (users.xml + users.d/) is re-read by its own ConfigReloader (every 2 s on
//     18.16; `SYSTEM RELOAD CONFIG` too on newer servers): profiles, users and quotas apply to the
//     next query / session without a restart.
// After a reload chops checks that the new value is visible (verify.ts): system.clusters,
// system.settings under the profile, or — for a section no system table shows — the
// preprocessed configuration the server writes after each successful load.
export type Effect = 'reload' | 'restart';
/** What is checked after the reload (or restart) to prove the server uses the new files. */
export type Verify = 'clusters' | 'macros' | 'profiles' | 'loaded';
export type Tree = 'config' | 'users';

export interface ReloadRow {
  tree: Tree;
  section: string;
  effect: Effect;
  verify: Verify;
  why: string;
}

export const RELOAD_TABLE: readonly ReloadRow[] = [
  { tree: 'config', section: 'remote_servers', effect: 'reload', verify: 'clusters', why: 'Context::setClustersConfig in the main ConfigReloader callback' },
  { tree: 'config', section: 'max_table_size_to_drop', effect: 'reload', verify: 'loaded', why: 'setMaxTableSizeToDrop in the main ConfigReloader callback' },
  {
    tree: 'config',
    section: 'max_partition_size_to_drop',
    effect: 'reload',
    verify: 'loaded',
    why: 'setMaxPartitionSizeToDrop in the main ConfigReloader callback',
  },
  { tree: 'config', section: 'macros', effect: 'reload', verify: 'macros', why: 'Context::setMacros in the main ConfigReloader callback' },
  {
    tree: 'users',
    section: 'profiles',
    effect: 'reload',
    verify: 'profiles',
    why: 'users ConfigReloader (Context::setUsersConfig): applies to the next query',
  },
  { tree: 'users', section: 'users', effect: 'reload', verify: 'loaded', why: 'users ConfigReloader: applies to the next login' },
  { tree: 'users', section: 'quotas', effect: 'reload', verify: 'loaded', why: 'users ConfigReloader: applies to the next query' },
];

export const treeOf = (dir: 'config.d' | 'users.d'): Tree => (dir === 'users.d' ? 'users' : 'config');

export interface SectionEffect {
  section: string;
  effect: Effect;
  verify: Verify;
  why: string;
}

/** The effect of changing SECTION in TREE: the table's row, or restart for anything not in it. */
export function sectionEffect(tree: Tree, section: string): SectionEffect {
  const row = RELOAD_TABLE.find((r) => r.tree === tree && r.section === section);
  if (row) return { section, effect: row.effect, verify: row.verify, why: row.why };
  return { section, effect: 'restart', verify: 'loaded', why: `${section} is not known to be applied at runtime: restart` };
}

/** Restart when any changed section needs one; reload otherwise (also when only comments changed). */
export function combine(effects: { effect: Effect }[]): Effect {
  return effects.some((e) => e.effect === 'restart') ? 'restart' : 'reload';
}
