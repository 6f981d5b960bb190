// config.d/chops-remote-servers.xml: every cluster of the inventory as <remote_servers>, the same
// on every node. Each cluster element is replace="replace" (chops owns the clusters it names);
// clusters defined in other files are left as they are.
import type { RemoteCluster, RenderedFile } from './types.js';
import { xmlDocument, xmlText } from './xml.js';

export const REMOTE_SERVERS_FILE = 'chops-remote-servers.xml';

export function renderRemoteServers(clusters: RemoteCluster[]): RenderedFile {
  const source = 'template remote_servers (inventory topology)';
  const body = ['<yandex>', '    <remote_servers>'];
  for (const c of clusters) {
    body.push(`        <${c.name} replace="replace">`);
    for (const shard of c.shards) {
      body.push('            <shard>', `                <internal_replication>${c.internalReplication}</internal_replication>`);
      for (const r of shard) body.push(`                <replica><host>${xmlText(r.host)}</host><port>${r.port}</port></replica>`);
      body.push('            </shard>');
    }
    body.push(`        </${c.name}>`);
  }
  body.push('    </remote_servers>', '</yandex>');
  return { dir: 'config.d', name: REMOTE_SERVERS_FILE, source, content: xmlDocument(source, body) };
}
