// Diagram -> Graphviz DOT. Time flows left to right (rankdir=LR); groups become clusters, and
// newrank=true ranks the whole graph at once so that parallel lanes (shards) line up across
// clusters instead of each cluster being ranked on its own. Group-to-group edges are drawn
// between their first/last nodes, clipped at the clusters (compound=true, lhead/ltail).
import { type DEdge, type DGroup, type DNode, type Diagram, type NodeKind, allGroups, allNodes } from './diagram.js';

const NODE_ATTRS: Record<NodeKind, string> = {
  terminal: 'shape=box, style="rounded,filled", fillcolor="#eceff1", color="#455a64"',
  step: 'shape=box, style="rounded,filled", fillcolor="#ffffff", color="#546e7a"',
  destructive: 'shape=box, style="rounded,filled,bold", fillcolor="#ffebee", color="#c62828", penwidth=2',
  gate: 'shape=hexagon, style=filled, fillcolor="#e3f2fd", color="#1565c0"',
  wait: 'shape=hexagon, style=filled, fillcolor="#fff8e1", color="#f9a825"',
  decision: 'shape=diamond, style=filled, fillcolor="#f3e5f5", color="#6a1b9a"',
  rollback: 'shape=box, style="rounded,filled,dashed", fillcolor="#fff3e0", color="#ef6c00"',
  stop: 'shape=octagon, style=filled, fillcolor="#ffcdd2", color="#b71c1c"',
};

const EDGE_ATTRS: Record<DEdge['kind'], string> = {
  flow: '',
  failure: 'color="#c62828", fontcolor="#c62828", style=dashed',
  rollback: 'color="#ef6c00", fontcolor="#ef6c00", style=bold',
  loop: 'color="#1565c0", fontcolor="#1565c0", style=dashed, constraint=false',
  order: 'style=invis',
};

export function toDot(d: Diagram): string {
  const id = idMap(d);
  const groups = new Map(allGroups(d).map((g) => [g.id, g]));
  const out: string[] = [
    `digraph ${q(d.title)} {`,
    `  graph [rankdir=LR, newrank=true, compound=true, fontname="Helvetica", fontsize=14, labelloc=t, label=${q(d.title)}, nodesep=0.35, ranksep=0.45];`,
    '  node [fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  const node = (n: DNode, ind: string) => out.push(`${ind}${id(n.id)} [label=${q(n.lines.flatMap((l) => wrap(l, 34)).join('\n'))}, ${NODE_ATTRS[n.kind]}];`);
  const cluster = (g: DGroup, ind: string) => {
    const fill = g.role === 'phase' ? '#f5f7fa' : g.role === 'shard' ? '#eef2f5' : '#ffffff';
    out.push(`${ind}subgraph ${id(g.id)} {`, `${ind}  label=${q(g.label)}; style="rounded,filled"; fillcolor="${fill}"; color="#90a4ae"; fontsize=11;`);
    for (const n of g.nodes) node(n, `${ind}  `);
    for (const c of g.groups) cluster(c, `${ind}  `);
    out.push(`${ind}}`);
  };
  for (const n of d.nodes) node(n, '  ');
  for (const g of d.groups) cluster(g, '  ');
  for (const e of d.edges) {
    if (e.kind === 'order') continue; // newrank and the invisible edges below keep lanes in line
    const from = groups.get(e.from);
    const to = groups.get(e.to);
    const tails = from ? exits(from) : [e.from];
    const heads = to ? entries(to) : [e.to];
    const attrs = [EDGE_ATTRS[e.kind], e.label ? `label=${q(e.label)}` : '', from ? `ltail=${id(from.id)}` : '', to ? `lhead=${id(to.id)}` : ''].filter(
      Boolean,
    );
    // One visible edge; invisible ones keep every parallel lane (shard) on the same ranks.
    tails.forEach((t, i) => {
      heads.forEach((h, j) => {
        out.push(`  ${id(t)} -> ${id(h)}${i === 0 && j === 0 ? (attrs.length ? ` [${attrs.join(', ')}]` : '') : ' [style=invis]'};`);
      });
    });
  }
  out.push('}');
  return `${out.join('\n')}\n`;
}

// A phase's child groups run in parallel (shards); a shard's children one after another (replicas).
function entries(g: DGroup): string[] {
  if (g.nodes.length) return [g.nodes[0].id];
  if (!g.groups.length) return [];
  return g.role === 'phase' ? g.groups.flatMap(entries) : entries(g.groups[0]);
}

function exits(g: DGroup): string[] {
  const main = g.nodes.filter((n) => n.kind !== 'rollback' && n.kind !== 'stop');
  if (main.length) return [main[main.length - 1].id];
  if (!g.groups.length) return [];
  return g.role === 'phase' ? g.groups.flatMap(exits) : exits(g.groups[g.groups.length - 1]);
}

function idMap(d: Diagram): (s: string) => string {
  const m = new Map<string, string>();
  const taken = new Set<string>();
  for (const n of allNodes(d)) add(n.id, 'n_');
  for (const g of allGroups(d)) add(g.id, 'cluster_');
  function add(raw: string, prefix: string) {
    let v = `${prefix}${raw.replace(/[^A-Za-z0-9_]/g, '_')}`;
    while (taken.has(v)) v += '_';
    taken.add(v);
    m.set(raw, v);
  }
  return (s) => {
    const v = m.get(s);
    if (!v) throw new Error(`diagram "${d.title}": edge names an unknown node or group "${s}"`);
    return v;
  };
}

/** A DOT double-quoted string; newlines become centred line breaks. */
export function q(s: string): string {
  return `"${s
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\r\n?|\n/g, '\\n')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ' ')}"`;
}

/** Graphviz does not wrap labels: break long lines at spaces. */
export function wrap(line: string, width: number): string[] {
  const out: string[] = [];
  let cur = '';
  for (const w of line.split(' ')) {
    if (cur && cur.length + 1 + w.length > width) {
      out.push(cur);
      cur = w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  out.push(cur);
  return out;
}
