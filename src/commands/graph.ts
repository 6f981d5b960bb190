// `chops graph NAME`: a playbook's flow (or the backup agent's) as Mermaid, DOT, SVG or PNG,
// drawn from the definitions that run. Playbook parameters go after the name, as for `chops run`.
import { writeFile } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import type { GlobalFlags } from './common.js';
import type { Host, Inventory } from '../inventory/types.js';

const FORMATS = ['mermaid', 'dot', 'svg', 'png'] as const;
type Format = (typeof FORMATS)[number];
const BY_EXTENSION: Record<string, Format> = { mmd: 'mermaid', mermaid: 'mermaid', dot: 'dot', gv: 'dot', svg: 'svg', png: 'png' };

export interface GraphFlags extends GlobalFlags {
  format?: string;
  out?: string;
}

export async function graphCommand(name: string, flags: GraphFlags, raw: Record<string, unknown>): Promise<number> {
  const format = chooseFormat(flags);
  const { diagramFor } = await import('../graph/flows.js');
  let inventory: Inventory | undefined;
  let selected: Host[] | undefined;
  if (flags.inventory !== undefined) {
    const { openInventory, selectHosts } = await import('./common.js');
    inventory = await openInventory(flags);
    selected = await selectHosts(inventory, flags);
  } else if (flags.limit !== undefined) {
    throw new UsageError('--limit needs an inventory', { hint: `chops graph ${name} -i inventory.yml --limit …` });
  }
  const diagram = await diagramFor(name, { raw, inventory, selected });
  let body: string | Buffer;
  if (format === 'mermaid') body = (await import('../graph/mermaid.js')).toMermaid(diagram);
  else {
    const dot = (await import('../graph/dot.js')).toDot(diagram);
    body = format === 'dot' ? dot : await (await import('../graph/render.js')).renderDot(dot, format);
  }
  if (flags.out) {
    await writeFile(flags.out, body);
    process.stderr.write(`wrote ${flags.out} (${format}, ${body.length} bytes)\n`);
  } else {
    if (format === 'png' && process.stdout.isTTY) throw new UsageError('PNG is binary and stdout is a terminal', { hint: 'write it to a file: -o flow.png' });
    process.stdout.write(body);
  }
  return 0;
}

function chooseFormat(flags: GraphFlags): Format {
  if (flags.format !== undefined) {
    if (!(FORMATS as readonly string[]).includes(String(flags.format))) {
      throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(flags.format)}`);
    }
    return flags.format as Format;
  }
  const ext = flags.out ? /\.([a-z]+)$/i.exec(flags.out)?.[1]?.toLowerCase() : undefined;
  return (ext && BY_EXTENSION[ext]) || 'mermaid';
}
