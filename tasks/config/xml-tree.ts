// A small XML reader for chops' own decisions about a config file: which top-level sections it
// has and what they hold (remote_servers, macros, profiles), so a change can be classified
// (reload or restart) and checked after the reload. It is NOT the validator: whether the server
// accepts a file is decided on the node by the server's own preprocessing (validate.ts). Anything
// this reader does not understand throws, and the caller then treats the change as unknown
// (restart).

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated text directly inside this element (trimmed). */
  text: string;
  /** The element's source text, as written (for "did this section change"). */
  raw: string;
}

const NAME = /[A-Za-z_][A-Za-z0-9._:-]*/y;

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e];
  });
}

/** The root element of DOC; throws Error on anything malformed. */
export function parseXml(doc: string): XmlElement {
  let i = 0;
  const s = doc.replace(/^\uFEFF/, '');
  const fail = (what: string): never => {
    const line = s.slice(0, i).split('\n').length;
    throw new Error(`${what} at line ${line}`);
  };
  const skipMisc = () => {
    for (;;) {
      while (i < s.length && /\s/.test(s[i])) i++;
      if (s.startsWith('<?', i)) {
        const e = s.indexOf('?>', i);
        if (e < 0) fail('unterminated processing instruction');
        i = e + 2;
      } else if (s.startsWith('<!--', i)) {
        const e = s.indexOf('-->', i + 4);
        if (e < 0) fail('unterminated comment');
        i = e + 3;
      } else if (s.startsWith('<!DOCTYPE', i)) {
        const e = s.indexOf('>', i);
        if (e < 0) fail('unterminated DOCTYPE');
        i = e + 1;
      } else return;
    }
  };
  const element = (depth: number): XmlElement => {
    if (depth > 64) fail('nested too deeply');
    const start = i;
    if (s[i] !== '<') fail('expected an element');
    i++;
    NAME.lastIndex = i;
    const m = NAME.exec(s);
    if (!m) fail('expected an element name');
    const name = m![0];
    i = NAME.lastIndex;
    const attrs: Record<string, string> = {};
    for (;;) {
      while (/\s/.test(s[i] ?? '')) i++;
      if (s.startsWith('/>', i)) {
        i += 2;
        return { name, attrs, children: [], text: '', raw: s.slice(start, i) };
      }
      if (s[i] === '>') {
        i++;
        break;
      }
      NAME.lastIndex = i;
      const a = NAME.exec(s);
      if (!a) fail(`bad attribute in <${name}>`);
      i = NAME.lastIndex;
      while (/\s/.test(s[i] ?? '')) i++;
      if (s[i] !== '=') fail(`attribute without value in <${name}>`);
      i++;
      while (/\s/.test(s[i] ?? '')) i++;
      const q = s[i];
      if (q !== '"' && q !== "'") fail(`unquoted attribute in <${name}>`);
      const e = s.indexOf(q, i + 1);
      if (e < 0) fail(`unterminated attribute in <${name}>`);
      attrs[a![0]] = decode(s.slice(i + 1, e));
      i = e + 1;
    }
    const children: XmlElement[] = [];
    let text = '';
    for (;;) {
      if (i >= s.length) fail(`<${name}> is not closed`);
      if (s.startsWith('</', i)) {
        const close = `</${name}`;
        if (!s.startsWith(close, i)) fail(`</${name}> expected`);
        i += close.length;
        while (/\s/.test(s[i] ?? '')) i++;
        if (s[i] !== '>') fail(`</${name}> expected`);
        i++;
        return { name, attrs, children, text: text.trim(), raw: s.slice(start, i) };
      }
      if (s.startsWith('<!--', i)) {
        const e = s.indexOf('-->', i + 4);
        if (e < 0) fail('unterminated comment');
        i = e + 3;
      } else if (s.startsWith('<![CDATA[', i)) {
        const e = s.indexOf(']]>', i);
        if (e < 0) fail('unterminated CDATA');
        text += s.slice(i + 9, e);
        i = e + 3;
      } else if (s.startsWith('<?', i)) {
        const e = s.indexOf('?>', i);
        if (e < 0) fail('unterminated processing instruction');
        i = e + 2;
      } else if (s[i] === '<') {
        children.push(element(depth + 1));
      } else {
        const e = s.indexOf('<', i);
        if (e < 0) fail(`<${name}> is not closed`);
        text += decode(s.slice(i, e));
        i = e;
      }
    }
  };
  skipMisc();
  const root = element(0);
  skipMisc();
  if (i < s.length) fail('content after the root element');
  return root;
}

/** Top-level sections of a config file: name → source text of every element of that name. */
export function xmlSections(doc: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of parseXml(doc).children) out.set(c.name, (out.get(c.name) ?? '') + c.raw);
  return out;
}

export const child = (e: XmlElement | undefined, name: string): XmlElement | undefined => e?.children.find((c) => c.name === name);
export const childrenNamed = (e: XmlElement | undefined, name: string): XmlElement[] => e?.children.filter((c) => c.name === name) ?? [];
