// The drawing model every `chops graph` output is rendered from: nodes, nested groups and edges,
// independent of Mermaid and Graphviz. Playbooks (playbook-flow.ts) and flows defined elsewhere
// (the backup agent's FlowGraph) are turned into a Diagram; mermaid.ts and dot.ts render it.

/** How a node is drawn; says what it is, not how it looks. */
export type NodeKind =
  | 'terminal' //    start / done
  | 'step' //        a step that changes (or reads) a host
  | 'destructive' // a step that destroys or replaces data (the run asks "Type YES")
  | 'gate' //        a read-only health/topology check that may refuse
  | 'wait' //        a step that polls until something holds (or its deadline passes)
  | 'decision' //    a branch (flows with choices, e.g. FULL or DIFF)
  | 'rollback' //    the undo of a step, run when a later step of the same host fails
  | 'stop'; //       the run stops here (refusal, failure): resume later

/** 'order': no meaning, only keeps parallel groups side by side in order (not drawn). */
export type EdgeKind = 'flow' | 'failure' | 'rollback' | 'loop' | 'order';

export interface DNode {
  id: string;
  /** Lines of text; the first one is the name. */
  lines: string[];
  kind: NodeKind;
}

export interface DEdge {
  from: string;
  to: string;
  label?: string;
  kind: EdgeKind;
}

/**
 * A box around nodes and groups. Edges whose ends are groups are drawn group to group: Mermaid
 * ignores a subgraph's direction as soon as one of its nodes links outside it.
 */
export interface DGroup {
  id: string;
  label: string;
  /** Layout inside the group: LR (a row, time flows right) or TB (stacked). */
  direction: 'LR' | 'TB';
  nodes: DNode[];
  groups: DGroup[];
  /** Phase boxes, shards, replicas: only changes the styling. */
  role: 'phase' | 'shard' | 'lane';
}

export interface Diagram {
  title: string;
  direction: 'LR' | 'TB';
  nodes: DNode[];
  groups: DGroup[];
  edges: DEdge[];
}

/**
 * A plain flowchart defined next to the code it describes (the backup agent's AGENT_FLOW):
 * nodes and edges, no groups. `kind` defaults to 'step'.
 */
export interface FlowGraph {
  nodes: Array<{ id: string; label: string; kind?: 'start' | 'end' | 'step' | 'decision' | 'refusal' | 'error' | 'wait' | string }>;
  /** `exit`: the exit code of a run that ends along this edge (non-zero: a failure path). */
  edges: Array<{ from: string; to: string; label?: string; kind?: string; exit?: number }>;
}

export function flowToDiagram(title: string, flow: FlowGraph): Diagram {
  const ids = new Set(flow.nodes.map((n) => n.id));
  for (const e of flow.edges) {
    for (const end of [e.from, e.to]) if (!ids.has(end)) throw new Error(`flow "${title}": edge ${e.from} -> ${e.to} names an unknown node "${end}"`);
  }
  const kindOf = (k: string | undefined): NodeKind => {
    if (k === 'start' || k === 'end') return 'terminal';
    if (k === 'decision') return 'decision';
    if (k === 'error' || k === 'refusal') return 'stop';
    if (k === 'wait') return 'wait';
    return 'step';
  };
  return {
    title,
    direction: 'TB',
    groups: [],
    nodes: flow.nodes.map((n) => ({ id: n.id, lines: n.label.split('\n'), kind: kindOf(n.kind) })),
    edges: flow.edges.map((e) => {
      const failed = e.kind === 'failure' || e.kind === 'error' || (e.exit !== undefined && e.exit !== 0);
      const label = [e.label, e.exit !== undefined ? `exit ${e.exit}` : ''].filter(Boolean).join(' · ') || undefined;
      return { from: e.from, to: e.to, label, kind: failed ? 'failure' : e.kind === 'loop' || e.from === e.to ? 'loop' : 'flow' };
    }),
  };
}

/** Every group of D, depth first. */
export function allGroups(d: { groups: DGroup[] }): DGroup[] {
  return d.groups.flatMap((g) => [g, ...allGroups(g)]);
}

/** Every node of D, its groups' included. */
export function allNodes(d: Diagram): DNode[] {
  return [...d.nodes, ...allGroups(d).flatMap((g) => g.nodes)];
}
