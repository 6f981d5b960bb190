// A local HTTP endpoint that answers the statements chops' gates send the way a modern ClickHouse
// (23.x–25.x) answers them over its HTTP interface, for the paths that cannot run on a real server
// here (the only one obtainable is Debian's 18.16). Driven through the real @clickhouse/client.
//
// What it reproduces, and from where:
//   - GET /ping → 200 "Ok.\n" (ClickHouse docs, "HTTP Interface": /ping).
//   - a result in JSONEachRow: one JSON object per line; UInt64/Int64 as quoted strings
//     (output_format_json_quote_64bit_integers=1, the default: docs, "Formats: JSONEachRow").
//   - an error: the HTTP status from src/Server/HTTP/exceptionCodeToHTTPStatus.cpp (e.g.
//     UNKNOWN_TABLE → 404, ACCESS_DENIED → 403, AUTHENTICATION_FAILED → 403, else 500), the
//     header X-ClickHouse-Exception-Code: N (src/Server/HTTPHandler.cpp), and the body
//     "Code: N. DB::Exception: MESSAGE. (NAME) (version V (official build))\n"
//     (src/Common/Exception.cpp, getExceptionMessage; the form @clickhouse/client's parseError
//     is written for: node_modules/@clickhouse/client/dist/common/error/error.js).
//     TIMEOUT_EXCEEDED → 408 (exceptionCodeToHTTPStatus: HTTP_REQUEST_TIMEOUT), which is how
//     `SYSTEM SYNC REPLICA` answers when receive_timeout passes (src/Interpreters/
//     InterpreterSystemQuery.cpp: "SYNC REPLICA db.t: command timed out. See the 'receive_timeout' setting").
//   - settings and the query id arrive as URL parameters (docs, "HTTP Interface": settings in the
//     URL; @clickhouse/client sends clickhouse_settings and query_id that way): the answer
//     function sees them, e.g. receive_timeout.
// The answers themselves come from the test: a function of the statement text, so a test states
// the server it stands for (its tables, its rows, its failures) next to its assertions.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeAnswer = (
  | { rows: Record<string, unknown>[] }
  | { error: { code: number; name: string; message: string } }
  | { hang: true }
  | { down: true }
) & {
  /** Answer after this long (a statement that waits server-side, such as SYNC REPLICA). */
  delayMs?: number;
};

export interface FakeClickHouse {
  port: number;
  /** Every statement received (without the FORMAT clause), in order. */
  statements: string[];
  /** The URL parameters (settings, query_id) of each statement, in the same order. */
  params: URLSearchParams[];
  close(): Promise<void>;
}

const HTTP_STATUS: Record<string, number> = {
  UNKNOWN_TABLE: 404,
  UNKNOWN_DATABASE: 404,
  ACCESS_DENIED: 403,
  AUTHENTICATION_FAILED: 403,
  UNKNOWN_USER: 403,
  SYNTAX_ERROR: 400,
  TIMEOUT_EXCEEDED: 408,
};

export const VERSION = '24.8.4.13';

export async function startFakeClickHouse(answer: (statement: string, params: URLSearchParams) => FakeAnswer, down?: () => boolean): Promise<FakeClickHouse> {
  const statements: string[] = [];
  const params: URLSearchParams[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (down?.()) {
      req.socket.destroy(); // a stopped server: the connection dies (ECONNRESET on the client)
      return;
    }
    if (url.pathname === '/ping') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' });
      res.end('Ok.\n');
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const statement = (url.searchParams.get('query') ?? body).replace(/\s*FORMAT\s+\w+\s*$/i, '').trim();
      statements.push(statement);
      params.push(url.searchParams);
      const a = answer(statement, url.searchParams);
      if (a.delayMs) setTimeout(() => respond(a), a.delayMs);
      else respond(a);
    });
    function respond(a: FakeAnswer): void {
      const queryId = url.searchParams.get('query_id') ?? '';
      if ('hang' in a) return; // never answers: the client's deadline must act
      if ('down' in a) return void req.socket.destroy();
      if ('error' in a) {
        res.writeHead(HTTP_STATUS[a.error.name] ?? 500, {
          'Content-Type': 'text/plain; charset=UTF-8',
          'X-ClickHouse-Exception-Code': String(a.error.code),
          'X-ClickHouse-Query-Id': queryId,
        });
        res.end(`Code: ${a.error.code}. DB::Exception: ${a.error.message}. (${a.error.name}) (version ${VERSION} (official build))\n`);
        return;
      }
      res.writeHead(200, {
        'Content-Type': 'application/x-ndjson; charset=UTF-8',
        'X-ClickHouse-Format': 'JSONEachRow',
        'X-ClickHouse-Query-Id': queryId,
        'X-ClickHouse-Summary':
          '{"read_rows":"0","read_bytes":"0","written_rows":"0","written_bytes":"0","total_rows_to_read":"0","result_rows":"0","result_bytes":"0","elapsed_ns":"1"}',
      });
      res.end(a.rows.map((r) => JSON.stringify(r)).join('\n') + (a.rows.length ? '\n' : ''));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    statements,
    params,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
