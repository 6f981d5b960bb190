// users.d/chops-profiles.xml: settings profiles from the inventory's config.profiles. Merged into
// users.xml key by key (no replace): a profile keeps the settings other files give it, and the
// ones named here take these values.
import type { ProfilesParams, RenderedFile } from './types.js';
import { xmlDocument, xmlText } from './xml.js';

export const PROFILES_FILE = 'chops-profiles.xml';

export function renderProfiles(p: ProfilesParams): RenderedFile {
  const source = 'template profiles (inventory config.profiles)';
  const body = ['<yandex>', '    <profiles>'];
  for (const prof of p.profiles) {
    body.push(`        <${prof.name}>`);
    for (const s of prof.settings) body.push(`            <${s.name}>${xmlText(s.value)}</${s.name}>`);
    body.push(`        </${prof.name}>`);
  }
  body.push('    </profiles>', '</yandex>');
  return { dir: 'users.d', name: PROFILES_FILE, source, content: xmlDocument(source, body) };
}
