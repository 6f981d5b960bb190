// The typed inputs of the server-configuration templates (config-push). Every field is
// required: a missing one is a type error, not a file with a hole in it.

/** Where a file goes on the node and which of the server's two configuration trees reads it. */
export interface ConfigTarget {
  /** config.d (merged into config.xml) or users.d (merged into users.xml). */
  dir: 'config.d' | 'users.d';
  /** File name inside that directory: safe characters only, .xml/.yaml/.yml. */
  name: string;
}

/** One rendered file: its target, its full content (chops' header included), and where it came from. */
export interface RenderedFile extends ConfigTarget {
  content: string;
  /** "template macros", "operator file /srv/ch/config.d/zz.xml" — for the header and messages. */
  source: string;
}

export interface MacrosParams {
  cluster: string;
  shard: string;
  replica: string;
}

export interface RemoteReplica {
  host: string;
  port: number;
}

export interface RemoteCluster {
  name: string;
  internalReplication: boolean;
  shards: RemoteReplica[][];
}

export interface ProfilesParams {
  profiles: { name: string; settings: { name: string; value: string }[] }[];
}
