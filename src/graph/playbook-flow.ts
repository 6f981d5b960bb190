// A playbook's flow, drawn from the same phases and steps the runner executes: order, scope,
// gates, destructive steps, skip conditions and rollback paths (the runner's rule: when a step
// fails, the rollbacks of that step and of the earlier steps of the same host and phase run in
// reverse order). With a topology, rolling phases are drawn per shard with the real replicas.
import { groupByShard } from '../inventory/topology.js';
import { type Phase, type Step, phaseHosts } from '../engine/playbook.js';
import type { DEdge, DGroup, DNode, Diagram, NodeKind } from './diagram.js';

/** The hosts a run would work on, in inventory order, with their shard. */
export interface Topology {
  hosts: Array<{ name: string; cluster: string; shard: number; shardName: string; replica: number }>;
}

const SCOPE_TEXT = {
  each: 'each host, all in parallel',
  rolling: 'rolling: shards in parallel, one replica at a time',
  once: 'once, on the first selected host',
} as const;

export function playbookDiagram(title: string, phases: Phase[], topo?: Topology): Diagram {
  const inner: DEdge[] = [];
  const groups = phases.map((ph, pi) => phaseGroup(ph, `p${pi + 1}`, `${pi + 1}. ${ph.name}`, inner, topo));
  const nodes: DNode[] = [
    { id: 'start', lines: ['start'], kind: 'terminal' },
    { id: 'done', lines: ['done'], kind: 'terminal' },
  ];
  // Phase to phase, group to group: a phase begins when the previous one is done on every host.
  const chain = ['start', ...groups.map((g) => g.id), 'done'];
  const edges: DEdge[] = chain.slice(1).map((to, i) => ({ from: chain[i], to, kind: 'flow' }));
  return { title, direction: 'TB', nodes, groups, edges: [...edges, ...inner] };
}

function phaseGroup(ph: Phase, id: string, name: string, edges: DEdge[], topo?: Topology): DGroup {
  const label = `${name} — ${SCOPE_TEXT[ph.scope]}`;
  const hosts = ph.scope === 'once' || !topo ? (topo?.hosts ?? []) : phaseHosts(ph, topo.hosts);
  if (ph.scope === 'rolling' && hosts.length) {
    const shards = groupByShard(hosts);
    return {
      id,
      label,
      direction: 'LR', // shards side by side: they run in parallel
      role: 'phase',
      nodes: [],
      groups: shards.map((replicas, si) => {
        if (si > 0) edges.push({ from: `${id}_sh${si}`, to: `${id}_sh${si + 1}`, kind: 'order' });
        const sid = `${id}_sh${si + 1}`;
        const lanes = replicas.map((h, ri) => lane(ph.steps, `${sid}_r${ri + 1}`, `${h.name} (replica ${h.replica})`, edges));
        for (let i = 0; i + 1 < lanes.length; i++) edges.push({ from: lanes[i].id, to: lanes[i + 1].id, label: 'healthy: next replica', kind: 'flow' });
        return {
          id: sid,
          label: `shard ${replicas[0].cluster}/${replicas[0].shardName}`,
          direction: 'TB',
          role: 'shard',
          nodes: [],
          groups: lanes,
        } satisfies DGroup;
      }),
    };
  }
  const g = lane(ph.steps, id, label, edges, ph.scope === 'rolling' ? 'next replica of the shard' : undefined);
  g.role = 'phase';
  if (hosts.length && ph.scope !== 'rolling') g.label += ph.scope === 'once' ? ` (${hosts[0].name})` : `: ${listHosts(hosts.map((h) => h.name))}`;
  return g;
}

/** The steps of one host, in order, with their failure and rollback paths. */
function lane(steps: Step[], id: string, label: string, edges: DEdge[], loop?: string): DGroup {
  const nodes: DNode[] = steps.map((s, i) => ({ id: `${id}_s${i + 1}`, lines: stepLines(s), kind: stepKind(s) }));
  for (let i = 0; i + 1 < nodes.length; i++) edges.push({ from: nodes[i].id, to: nodes[i + 1].id, kind: 'flow' });
  if (loop && nodes.length) edges.push({ from: nodes[nodes.length - 1].id, to: nodes[0].id, label: loop, kind: 'loop' });

  const stop: DNode = { id: `${id}_stop`, lines: ['✖ run stops', 'fix, then chops resume'], kind: 'stop' };
  const rollbacks = new Map<number, DNode>();
  steps.forEach((s, i) => {
    if (s.rollback) rollbacks.set(i, { id: `${id}_rb${i + 1}`, lines: [`↩ undo: ${s.name}`], kind: 'rollback' });
  });
  const undoFrom = (k: number): DNode | undefined => {
    for (let r = k; r >= 0; r--) if (rollbacks.has(r)) return rollbacks.get(r);
    return undefined;
  };
  steps.forEach((s, k) => {
    const to = undoFrom(k) ?? stop;
    const why = s.gate ? 'refuses / deadline' : s.waitsFor ? 'deadline passes' : 'fails';
    edges.push({ from: nodes[k].id, to: to.id, label: why, kind: 'failure' });
  });
  // Rollbacks run newest first, then the run stops.
  const rb = [...rollbacks.entries()].sort((a, b) => b[0] - a[0]).map(([, n]) => n);
  for (let i = 0; i < rb.length; i++)
    edges.push({ from: rb[i].id, to: (rb[i + 1] ?? stop).id, label: i + 1 < rb.length ? undefined : 'rolled back', kind: 'rollback' });
  return { id, label, direction: 'LR', role: 'lane', nodes: [...nodes, ...rb, stop], groups: [] };
}

function stepKind(s: Step): NodeKind {
  if (s.destructive) return 'destructive';
  if (s.gate) return 'gate';
  if (s.waitsFor) return 'wait';
  return 'step';
}

function stepLines(s: Step): string[] {
  const lines = [s.destructive ? `⚠ ${s.name}` : s.name];
  if (s.gate) lines.push(`gate: ${s.description ?? 'read-only check'}`);
  else if (s.description) lines.push(s.description);
  if (s.waitsFor) lines.push(`waits until: ${s.waitsFor}`);
  if (s.skipIf) lines.push(`skipped if ${s.skipIf}`);
  if (s.destructive) lines.push('destructive: asks Type YES');
  return lines;
}

function listHosts(names: string[], max = 6): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} (+${names.length - max} more)`;
}
