// Which top-level sections of a config file a change touches, and so what it takes to apply it
// (reload-table.ts). A file chops cannot read counts as "unknown": restart.
import { parse as parseYaml } from 'yaml';
import { xmlSections } from './xml-tree.js';
import { sectionEffect, type SectionEffect, type Tree } from './reload-table.js';

export const isYaml = (name: string): boolean => /\.ya?ml$/i.test(name);

/** Top-level sections: name → canonical text. Throws when the file cannot be read. */
export function sectionsOf(name: string, content: string): Map<string, string> {
  if (!isYaml(name)) return xmlSections(content);
  const doc = parseYaml(content) as unknown;
  const out = new Map<string, string>();
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error('a YAML config file is a map of sections');
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) out.set(k, JSON.stringify(v));
  return out;
}

/** The sections whose content differs between OLD (undefined: no file) and NEW, with their effect. */
export function changedSections(tree: Tree, name: string, oldContent: string | undefined, newContent: string): SectionEffect[] {
  let before: Map<string, string>;
  let after: Map<string, string>;
  try {
    before = oldContent === undefined ? new Map() : sectionsOf(name, oldContent);
    after = sectionsOf(name, newContent);
  } catch (e) {
    return [{ section: '(unreadable)', effect: 'restart', verify: 'loaded', why: `chops cannot read the file's sections (${(e as Error).message}): restart` }];
  }
  const names = [...new Set([...before.keys(), ...after.keys()])];
  return names.filter((n) => before.get(n) !== after.get(n)).map((n) => sectionEffect(tree, n));
}
