// ClickHouse server errors as text, in every format chops meets:
//   18.16 HTTP:    Code: 60, e.displayText() = DB::Exception: Table x doesn't exist., e.what() = DB::Exception
//   18.16 client:  Code: 62. DB::Exception: Syntax error: ...
//   newer (20+):   Code: 60. DB::Exception: Table default.x does not exist. (UNKNOWN_TABLE) (version 23.8.1.1)
//   remote:        Received exception from server (version 18.16.1):\nCode: 60. DB::Exception: Received from ...
// @clickhouse/client parses only the newest form, so on 18.16 `.code` is missing: parse it here.
import { ChopsError } from '../errors.js';

export interface ParsedClickHouseError {
  code?: number;
  /** Error name, e.g. UNKNOWN_TABLE: from the text when the server sends it, else from the code. */
  type?: string;
  /** The server's message without the "Code: N, e.displayText() = DB::Exception:" wrapping. */
  message: string;
}

/** Names of the error codes chops meets most (18.16 does not send names). */
const CODE_NAMES: Record<number, string> = {
  16: 'NO_SUCH_COLUMN_IN_TABLE',
  36: 'BAD_ARGUMENTS',
  43: 'ILLEGAL_TYPE_OF_ARGUMENT',
  46: 'UNKNOWN_FUNCTION',
  47: 'UNKNOWN_IDENTIFIER',
  48: 'NOT_IMPLEMENTED',
  53: 'TYPE_MISMATCH',
  57: 'TABLE_ALREADY_EXISTS',
  60: 'UNKNOWN_TABLE',
  62: 'SYNTAX_ERROR',
  73: 'UNKNOWN_FORMAT',
  81: 'UNKNOWN_DATABASE',
  82: 'DATABASE_ALREADY_EXISTS',
  115: 'UNKNOWN_SETTING',
  159: 'TIMEOUT_EXCEEDED',
  164: 'READONLY',
  192: 'UNKNOWN_USER',
  193: 'WRONG_PASSWORD',
  194: 'REQUIRED_PASSWORD',
  195: 'IP_ADDRESS_NOT_ALLOWED',
  202: 'TOO_MANY_SIMULTANEOUS_QUERIES',
  209: 'SOCKET_TIMEOUT',
  210: 'NETWORK_ERROR',
  225: 'NO_ZOOKEEPER',
  236: 'ABORTED',
  241: 'MEMORY_LIMIT_EXCEEDED',
  242: 'TABLE_IS_READ_ONLY',
  252: 'TOO_MANY_PARTS',
  279: 'ALL_CONNECTION_TRIES_FAILED',
  319: 'UNKNOWN_STATUS_OF_INSERT',
  341: 'UNFINISHED',
  394: 'QUERY_WAS_CANCELLED',
  473: 'DEADLOCK_AVOIDED',
  497: 'ACCESS_DENIED',
  516: 'AUTHENTICATION_FAILED',
  999: 'KEEPER_EXCEPTION',
};

export function clickHouseErrorName(code: number | undefined): string | undefined {
  return code === undefined ? undefined : CODE_NAMES[code];
}

// "Code: 60, e.displayText() = DB::Exception: MSG, e.what() = DB::Exception"
const OLD_HTTP = /Code: (\d+), e\.displayText\(\) = ([\w:]+): ([\s\S]*?)(?:, e\.what\(\) = [\w:]+)?\s*$/;
// "Code: 60. DB::Exception: MSG. (UNKNOWN_TABLE) (version 23.8.1.1)"
const DOTTED = /Code: (\d+)\. ([\w:]+): ([\s\S]*?)\s*$/;
const TRAILER_VERSION = /\s*\(version [^)]*\)\s*$/;
const TRAILER_TYPE = /\s*\(([A-Z][A-Z0-9_]+)\)\s*$/;

export function parseClickHouseError(text: string): ParsedClickHouseError {
  const raw = String(text ?? '').trim();
  // The first "Code: N" is the error itself; later ones are nested causes (e.g. 279 "All connection
  // tries failed. Log: ... Code: 209 ..."); a "Received exception from server" preamble is skipped.
  const at = raw.indexOf('Code: ');
  const body = at >= 0 ? raw.slice(at) : raw;
  let m = OLD_HTTP.exec(body);
  let code: number | undefined;
  let message: string;
  let type: string | undefined;
  if (m && body.includes('e.displayText()')) {
    code = Number(m[1]);
    message = m[3];
  } else if ((m = DOTTED.exec(body))) {
    code = Number(m[1]);
    message = m[3];
  } else {
    const bare = /^Code: (\d+)[.,]?\s*([\s\S]*)$/.exec(body);
    if (bare) {
      code = Number(bare[1]);
      message = bare[2];
    } else {
      message = raw;
    }
  }
  message = message.replace(TRAILER_VERSION, '');
  const t = TRAILER_TYPE.exec(message);
  if (t) {
    type = t[1];
    message = message.slice(0, t.index);
  }
  message = message.replace(/^(?:DB::\w*Exception: )+/, '').trim();
  if (!message) message = raw || 'unknown ClickHouse error';
  return { code, type: type ?? clickHouseErrorName(code), message };
}

/**
 * What went wrong: the server answered with an error, the query outlived its timeout (a KILL
 * QUERY was sent), the caller aborted it, or the server could not be reached at all.
 */
export type ClickHouseErrorKind = 'server' | 'timeout' | 'aborted' | 'connection';

/** A query or command failed on HOST (server error, timeout, or the server not answering). */
export class ClickHouseError extends ChopsError {
  readonly host: string;
  readonly kind: ClickHouseErrorKind;
  readonly code?: number;
  readonly type?: string;
  readonly query?: string;
  /** The server's message alone (no host, code or query). */
  readonly serverMessage: string;
  constructor(
    host: string,
    message: string,
    opts: { kind?: ClickHouseErrorKind; code?: number; type?: string; query?: string; hint?: string; cause?: unknown } = {},
  ) {
    const codeText = opts.code !== undefined ? ` [Code ${opts.code}${opts.type ? ` ${opts.type}` : ''}]` : '';
    super(`${host}: ClickHouse${codeText}: ${message}${opts.query ? `\n  query: ${shortQuery(opts.query)}` : ''}`, { hint: opts.hint, cause: opts.cause });
    this.host = host;
    this.kind = opts.kind ?? 'server';
    this.code = opts.code;
    this.type = opts.type;
    this.query = opts.query;
    this.serverMessage = message;
  }
}

/** One line, at most 300 characters: enough to recognise the query in a message. */
export function shortQuery(q: string): string {
  const one = q.replace(/\s+/g, ' ').trim();
  return one.length > 300 ? `${one.slice(0, 297)}...` : one;
}
