// config.d/chops-macros.xml: the {cluster}, {shard} and {replica} macros of one node, from the
// inventory's topology. replace="replace": the macros of a node are chops' alone (a file merged
// earlier cannot leave a stale macro behind).
import type { MacrosParams, RenderedFile } from './types.js';
import { xmlDocument, xmlText } from './xml.js';

export const MACROS_FILE = 'chops-macros.xml';

export function renderMacros(p: MacrosParams): RenderedFile {
  const source = 'template macros (inventory topology)';
  return {
    dir: 'config.d',
    name: MACROS_FILE,
    source,
    content: xmlDocument(source, [
      '<yandex>',
      '    <macros replace="replace">',
      `        <cluster>${xmlText(p.cluster)}</cluster>`,
      `        <shard>${xmlText(p.shard)}</shard>`,
      `        <replica>${xmlText(p.replica)}</replica>`,
      '    </macros>',
      '</yandex>',
    ]),
  };
}
