// `chops playbooks`: what can be run, with each parameter.
import { PLAYBOOKS } from '../../playbooks/index.js';
import { durationText } from '../duration.js';

export async function playbooksCommand(flags: { json?: boolean }): Promise<number> {
  const list = await Promise.all(Object.values(PLAYBOOKS).map(async (load) => (await load()).default));
  if (flags.json) {
    process.stdout.write(
      JSON.stringify(
        list.map((p) => ({ name: p.name, description: p.description, params: p.params })),
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  const out: string[] = [];
  for (const p of list) {
    out.push(`${p.name}\n  ${p.description}`);
    for (const prm of p.params) {
      const shown = prm.type === 'duration' && typeof prm.default === 'number' ? durationText(prm.default) : JSON.stringify(prm.default);
      const dflt = prm.default !== undefined ? ` (default: ${shown})` : prm.required ? ' (required)' : '';
      const kind = prm.type === 'choice' ? prm.choices!.join('|') : prm.type;
      out.push(`    --${prm.name} <${kind}>  ${prm.description}${dflt}`);
    }
    out.push('');
  }
  process.stdout.write(out.join('\n'));
  return 0;
}
