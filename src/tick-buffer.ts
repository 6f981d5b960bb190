// Text written many times per event-loop turn (a run-log entry and two output lines per step on
// every host) collected and written once per turn: on the 20-host fan-out a write(2) per line
// was ~1200 system calls per run. The buffer is written in the check phase of the same turn
// (setImmediate: after every socket the poll phase found ready has been handled), before any
// timer or further I/O, and at process exit; so the delay is sub-millisecond and nothing is left
// in it by a normal exit, process.exit() or an uncaught exception (only SIGKILL loses a turn).
// Never used for what must be on disk before a command is sent: the run journal awaits its own
// writes (src/run/state/writer.ts).
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
