// Run-log entries of one event-loop turn collected and written once per turn (each step on each
// host writes several; a write(2) apiece was ~400 system calls per run on the 20-host fan-out).
// The buffer is written in the check phase of the same turn (setImmediate: after every socket
// the poll phase found ready has been handled), and at process exit; so nothing is left in it by
// a normal exit, process.exit() or an uncaught exception. A step's command entry is buffered
// before its "done" is written to the journal, so the log is behind the state only by what a
// SIGKILL cuts off in that turn. Not for what must be on disk before a command is sent (the
// journal awaits its own writes: src/run/state/writer.ts), nor for the operator's output (its
// "ok" line follows the journal's "done" and must not be lost by a SIGKILL after it).
export class TickBuffer {
  private parts: string[] = [];
  private scheduled = false;
  private readonly onExit = () => this.flush();

  constructor(private readonly sink: (text: string) => void) {}

  write(text: string): void {
    this.parts.push(text);
    if (this.scheduled) return;
    this.scheduled = true;
    process.once('exit', this.onExit);
    setImmediate(() => this.flush());
  }

  /** Write what is buffered now (in one sink call). */
  flush(): void {
    if (!this.scheduled) return;
    this.scheduled = false;
    process.removeListener('exit', this.onExit);
    const text = this.parts.join('');
    this.parts = [];
    if (text) this.sink(text);
  }
}
