// Appending small records to a run's files (the journal, run.log) with plain write(2) calls on
// an O_APPEND descriptor, from the main thread. An asynchronous write hands each record to
// libuv's thread pool and back (two thread wake-ups and an eventfd per record: ~4 per step on
// every host); on a loaded control machine those handoffs cost more CPU than the writes
// themselves. A record is a few hundred bytes (a run-log entry at most ~130 KB: 64 KB of each
// stream), written to the page cache; only a state dir on a stalled network filesystem would
// block the event loop here.
import { closeSync, openSync, writeSync } from 'node:fs';

export class AppendFile {
  private fd: number | undefined;

  /** Open PATH for appending (created with MODE); throws like fs.openSync. */
  constructor(
    readonly path: string,
    mode = 0o600,
  ) {
    this.fd = openSync(path, 'a', mode);
  }

  /** Append TEXT in one write(2) (repeated only if the kernel took part of it); throws on error. */
  write(text: string): void {
    if (this.fd === undefined) throw new Error(`${this.path} is closed`);
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
  }

  close(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) closeSync(fd);
  }
}
