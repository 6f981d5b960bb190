// Diagram -> Mermaid flowchart (what GitHub renders in Markdown). Every label is entity-encoded
// outside a small safe set, so step names with quotes, brackets or shell syntax (exec --cmd)
// cannot break the syntax; ids are generated, never taken from labels (`end` is a keyword).
import { type DEdge, type DGroup, type DNode, type Diagram, type EdgeKind, type NodeKind, allGroups, allNodes } from './diagram.js';

const SHAPE: Record<NodeKind, [string, string]> = {
  terminal: ['([', '])'],
  step: ['[', ']'],
  destructive: ['[', ']'],
  gate: ['{{', '}}'],
  wait: ['{{', '}}'],
  decision: ['{', '}'],
  rollback: ['[', ']'],
  stop: ['([', '])'],
};

const CLASS_DEFS: Record<NodeKind, string> = {
  terminal: 'fill:#eceff1,stroke:#455a64',
  step: 'fill:#ffffff,stroke:#546e7a',
  destructive: 'fill:#ffebee,stroke:#c62828,stroke-width:3px',
  gate: 'fill:#e3f2fd,stroke:#1565c0',
  wait: 'fill:#fff8e1,stroke:#f9a825',
  decision: 'fill:#f3e5f5,stroke:#6a1b9a',
  rollback: 'fill:#fff3e0,stroke:#ef6c00,stroke-dasharray:4 3',
  stop: 'fill:#ffcdd2,stroke:#b71c1c',
};

const LINK_STYLE: Partial<Record<EdgeKind, string>> = {
  failure: 'stroke:#c62828',
  rollback: 'stroke:#ef6c00',
  loop: 'stroke:#1565c0',
};

/** Mermaid text for D (no fences). */
export function toMermaid(d: Diagram): string {
  const id = idMap(d);
  const out: string[] = ['---', `title: ${text(d.title)}`, '---', `flowchart ${d.direction}`];
  const node = (n: DNode, ind: string) => {
    const [o, c] = SHAPE[n.kind];
    out.push(`${ind}${id(n.id)}${o}"${n.lines.map(text).join('<br/>')}"${c}`);
  };
  const group = (g: DGroup, ind: string) => {
    out.push(`${ind}subgraph ${id(g.id)}["${text(g.label)}"]`);
    out.push(`${ind}  direction ${g.direction}`);
    for (const n of g.nodes) node(n, `${ind}  `);
    for (const c of g.groups) group(c, `${ind}  `);
    out.push(`${ind}end`);
  };
  for (const n of d.nodes) node(n, '  ');
  for (const g of d.groups) group(g, '  ');
  for (const e of d.edges) out.push(`  ${edge(e, id)}`);
  const byKind = new Map<NodeKind, string[]>();
  for (const n of allNodes(d)) byKind.set(n.kind, [...(byKind.get(n.kind) ?? []), id(n.id)]);
  for (const [k, ids] of byKind) out.push(`  classDef ${k} ${CLASS_DEFS[k]}`, `  class ${ids.join(',')} ${k}`);
  for (const [k, style] of Object.entries(LINK_STYLE)) {
    const idx = d.edges.flatMap((e, i) => (e.kind === k ? [i] : []));
    if (idx.length) out.push(`  linkStyle ${idx.join(',')} ${style}`);
  }
  for (const g of allGroups(d)) if (g.role !== 'phase') out.push(`  style ${id(g.id)} fill:${g.role === 'shard' ? '#fafafa' : '#ffffff'},stroke:#90a4ae`);
  return `${out.join('\n')}\n`;
}

/** Markdown block: the diagram inside a ```mermaid fence. */
export function mermaidBlock(d: Diagram): string {
  return `\`\`\`mermaid\n${toMermaid(d)}\`\`\`\n`;
}

function edge(e: DEdge, id: (s: string) => string): string {
  if (e.kind === 'order') return `${id(e.from)} ~~~ ${id(e.to)}`;
  const arrow = e.kind === 'flow' ? '-->' : e.kind === 'rollback' ? '==>' : '-.->';
  return `${id(e.from)} ${arrow}${e.label ? `|"${text(e.label)}"|` : ''} ${id(e.to)}`;
}

/** Ids as Mermaid sees them: n_<safe>, unique; unknown ids are a bug in the caller. */
function idMap(d: Diagram): (s: string) => string {
  const m = new Map<string, string>();
  const taken = new Set<string>();
  for (const x of [...allNodes(d), ...allGroups(d)]) {
    let v = `n_${x.id.replace(/[^A-Za-z0-9_]/g, '_')}`;
    while (taken.has(v)) v += '_';
    taken.add(v);
    m.set(x.id, v);
  }
  return (s) => {
    const v = m.get(s);
    if (!v) throw new Error(`diagram "${d.title}": edge names an unknown node or group "${s}"`);
    return v;
  };
}

/** Label text: anything outside a safe set becomes a Mermaid entity (#NN;). */
export function text(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    out += /[A-Za-z0-9 .,:/()+=@_'!?*%-]/.test(ch) || (cp >= 0xa0 && cp !== 0x2028 && cp !== 0x2029) ? ch : `#${cp};`;
  }
  return out;
}
