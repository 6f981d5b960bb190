// XML text and the header every file chops owns carries. No template engine: typed functions
// build the lines, and every value goes through xmlText().

/** Escape a value for XML element text (and attribute values). */
export function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** The marker that says a file on a node is chops' own. Files without it are never touched. */
export const CHOPS_MARK = 'Managed by chops (config-push)';

/** Text inside an XML comment may not contain "--". */
const commentSafe = (s: string): string => s.replace(/-{2,}/g, (m) => m.split('').join(' ')).replace(/[\r\n]+/g, ' ');

export function xmlHeader(source: string): string {
  return `<!-- ${CHOPS_MARK}: written by \`chops run config-push\` from ${commentSafe(source)}. Edits here are overwritten; change the source instead. -->`;
}

export function yamlHeader(source: string): string {
  return `# ${CHOPS_MARK}: written by \`chops run config-push\` from ${source.replace(/[\r\n]+/g, ' ')}. Edits here are overwritten; change the source instead.`;
}

/** Is this file's content chops' own (the marker in its first lines)? */
export function isChopsOwned(content: string): boolean {
  return content.split('\n', 5).some((l) => l.includes(CHOPS_MARK));
}

/** An XML document with chops' header: declaration, header comment, then the body lines. */
export function xmlDocument(source: string, body: string[]): string {
  return ['<?xml version="1.0"?>', xmlHeader(source), ...body, ''].join('\n');
}

/**
 * The operator's file with chops' header added: after the XML declaration when there is one
 * (nothing may precede it), first otherwise; a YAML file gets a comment line first.
 */
export function withHeader(name: string, content: string, source: string): string {
  if (/\.ya?ml$/i.test(name)) return `${yamlHeader(source)}\n${content}`;
  const decl = /^\uFEFF?\s*<\?xml[^?]*\?>[ \t]*\r?\n?/.exec(content);
  if (decl) return `${decl[0].replace(/\r?\n?$/, '')}\n${xmlHeader(source)}\n${content.slice(decl[0].length)}`;
  return `${xmlHeader(source)}\n${content}`;
}
