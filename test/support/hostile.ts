// The one list of hostile strings: values that break naive shell, SQL, YAML or terminal
// handling. Every test of quoting, SQL literals, the state file and echoed input uses it.
// Shell-argument tests use ARGV_SAFE (a NUL byte can never be part of a process argument).

export const HOSTILE: string[] = [
  // shell

  "it's",
  '"double"',
  '$(touch /tmp/chops-pwned)',
  '`touch /tmp/chops-pwned`',
  'a; touch /tmp/chops-pwned',
  'line1\nline2',
  '*',
  '/etc/*',
  '-rf',
  '--help',
  ' leading and trailing ',
  '',
  '$HOME',
  '\\',
  "'; echo pwned; '",
  'a|b&c>d<e',
  '~root',
  '#comment',
  'tab\there',
  'ünïcödé ✓',
  '!bang',
  '{a,b}',
  // SQL / literals / encodings

  '',
  "'",
  "''",
  "it's",
  '\\',
  '\\\\',
  "\\'",
  "'\\",
  "x' OR 1=1 --",
  "'; DROP TABLE lab.events_local; --",
  'a\nb',
  'line1\r\nline2',
  '\ttab',
  'nul\0byte',
  '\0',
  '\x01\x02\x07\x08\x0b\x0c\x1b\x1f\x7f',
  '`backtick`',
  '"double"',
  '\\n not a newline',
  '\\x41 not an A',
  '%s %d {x:String} ? $1',
  'Ünïcödé ✓ 日本語 🚀 \u{10FFFF}',
  '\u2028\u2029',
  '/* comment */ -- x',
  'a'.repeat(10_000),
  // terminal: C1 controls, bidi override, ESC sequences
  '\u009b31m C1 CSI',
  '\u202eevil\u202c',
  '\x1b[2J\x1b[H cleared',
];

/** Values that can be one process argument (no NUL byte). */
export const ARGV_SAFE: string[] = HOSTILE.filter((s) => !s.includes('\0'));
