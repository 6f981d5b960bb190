// Log text of one event-loop turn collected and written once per turn: each step on each host
// writes several run-log entries, and a write(2) apiece was ~400 system calls per run on the
// 20-host fan-out. A buffer is written in the check phase of the same turn (setImmediate: after
// every socket the poll phase found ready has been handled), at process exit (so a normal exit,
// process.exit() or an uncaught exception leaves nothing in it), and — the ordering that makes a
// crash leave a consistent pair — by the journal before each of its writes
// (src/run/state/writer.ts calls flushTurnBuffers()): the log is never behind the state, and a
// SIGKILL costs at most the entries of the turn it lands in. The operator's plain and JSON lines
// use it too (src/engine/output.ts): a step's "ok" line is made after its "done" is on disk.
/** The buffers holding text now; one exit listener writes them all. */
const live = new Set<TurnBuffer>();
let exitHooked = false;

/** Write every buffer's pending text now (the journal calls this before it writes). */
export function flushTurnBuffers(): void {
  for (const b of live) b.flush();
}

export class TurnBuffer {
  private parts: string[] = [];
  private scheduled = false;

  /** SINK writes one batch (whole entries only) and must not throw. */
  constructor(private readonly sink: (text: string) => void) {}

  write(text: string): void {
    this.parts.push(text);
    if (this.scheduled) return;
    this.scheduled = true;
    live.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.once('exit', flushTurnBuffers);
    }
    setImmediate(() => this.flush());
  }

  /** Write what is buffered now, in one sink call. */
  flush(): void {
    if (!this.scheduled) return;
    this.scheduled = false;
    live.delete(this);
    const text = this.parts.join('');
    this.parts = [];
    if (text) this.sink(text);
  }
}
