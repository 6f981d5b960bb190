// chops command line. Only cac is loaded up front; each command imports what it needs, so
// `chops --help` stays well under 200 ms cold.
import { cac } from 'cac';
import { normaliseArgv, rawFlags, withRawValues } from './commands/argv.js';

const cli = cac('chops');
// Flag values as typed (argv.ts): cac's own conversion would turn '' into 0 and 0022 into 22.
const argv = normaliseArgv(process.argv);
const raw = rawFlags(argv.slice(2));
const typed = (flags: any): any => withRawValues(flags, raw);

// A reader that goes away (`chops run … | head`) must not kill a run halfway through a replica:
// keep working; the run log and state file still record everything.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

const hostOptions = (c: ReturnType<typeof cli.command>) =>
  c
    .option('-i, --inventory <file>', 'inventory file', { default: 'inventory.yml' })
    .option('--limit <hosts>', 'only these hosts (comma-separated names)')
    .option('--output <mode>', 'tty (live display: counts per phase, running and failed hosts), plain (one line per event) or json')
    .option('--json', 'one JSON object per line on stdout');

hostOptions(cli.command('plan <playbook>', 'Show every command a run would perform, decided on real facts (changes nothing)'))
  .option('--parallel-shards <n>', 'shards worked on at once in rolling phases', { default: 2 })
  .allowUnknownOptions()
  .action((name: string, flags: any) =>
    dispatch(async () => (await import('./commands/run.js')).planCommand(name, typed(flags), await playbookFlags(typed(flags)))),
  );

hostOptions(cli.command('run <playbook>', 'Run a playbook (playbook parameters go after it: chops run exec --cmd "uptime")'))
  .option(
    '-y, --yes',
    'do not ask before steps that stop servers or destroy data (rolling-restart, exec --rolling/--reboot); required for them without a terminal',
  )
  .option('--parallel-shards <n>', 'shards worked on at once in rolling phases', { default: 2 })
  .option('--parallel-hosts <n>', 'hosts worked on at once in each-host phases', { default: 64 })
  .allowUnknownOptions()
  .action((name: string, flags: any) =>
    dispatch(async () => (await import('./commands/run.js')).runCommand(name, typed(flags), await playbookFlags(typed(flags)))),
  );

hostOptions(
  cli.command(
    'resume [run]',
    'Continue an interrupted or failed run from the step in progress (default: the latest unfinished, not abandoned run of this inventory)',
  ),
)
  .option('-y, --yes', 'do not ask before steps that stop servers or destroy data; required for them without a terminal')
  .option('--parallel-shards <n>', 'shards worked on at once in rolling phases', { default: 2 })
  .option('--parallel-hosts <n>', 'hosts worked on at once in each-host phases', { default: 64 })
  .action((run: string | undefined, flags: any) => dispatch(async () => (await import('./commands/run.js')).resumeCommand(run, typed(flags))));

cli
  .command('status', 'One row per replica: ssh, version, uptime, service, read-only, queue, delay, data disk (exit 1 if any is unhealthy)')
  .option('-i, --inventory <file>', 'inventory file', { default: 'inventory.yml' })
  .option('--limit <hosts>', 'only these hosts (comma-separated names)')
  .option('--json', 'JSON output: {healthy, replicas: [...]}')
  .option('--verbose', 'also show what the capability probe found on each server')
  .action((flags: any) => dispatch(async () => (await import('./commands/status.js')).statusCommand(typed(flags))));

cli
  .command('runs', 'List past runs with their outcome')
  .option('-i, --inventory <file>', 'inventory file (its state.dir holds the runs)', { default: 'inventory.yml' })
  .option('--json', 'JSON output')
  .action((flags: any) => dispatch(async () => (await import('./commands/runs.js')).runsCommand(typed(flags))));

cli
  .command('playbooks', 'List the playbooks with their descriptions and parameters')
  .option('--json', 'JSON output')
  .action((flags: any) => dispatch(async () => (await import('./commands/playbooks.js')).playbooksCommand(typed(flags))));

cli
  .command('inventory <action>', 'inventory check: validate the inventory and print the topology')
  .option('-i, --inventory <file>', 'inventory file', { default: 'inventory.yml' })
  .option('--json', 'JSON output')
  .action((action: string, flags: any) => dispatch(async () => (await import('./commands/inventory.js')).inventoryCommand(action, typed(flags))));

cli
  .command('abandon <run>', 'Give up on an unfinished run: shown as abandoned in `chops runs`, never picked by `chops resume`')
  .option('-i, --inventory <file>', 'inventory file (its state.dir holds the runs)', { default: 'inventory.yml' })
  .option('--reason <text>', 'why (kept with the run)')
  .action((run: string, flags: any) => dispatch(async () => (await import('./commands/abandon.js')).abandonCommand(run, typed(flags))));

cli
  .command('unlock <cluster>', 'Remove a stale run lock left by a crashed run (refuses while that run is alive)')
  .option('-i, --inventory <file>', 'inventory file', { default: 'inventory.yml' })
  .option('--force', 'also remove a lock taken on another controller')
  .action((cluster: string, flags: any) => dispatch(async () => (await import('./commands/unlock.js')).unlockCommand(cluster, typed(flags))));

cli
  .command('backup <action>', 'Backups: install (playbook backup-install) | run --type full|diff [--shard N] | status [--json] | list')
  .option('-i, --inventory <file>', 'inventory file', { default: 'inventory.yml' })
  .option('--limit <hosts>', 'install: only these hosts')
  .option('--output <mode>', 'install: tty, plain or json')
  .option('--json', 'JSON output')
  .option('-y, --yes', 'install: do not ask')
  .option('--type <type>', 'run: full or diff')
  .option('--shard <n>', 'run/status/list: only this shard (name or 1-based index)')
  .option('--max-age <duration>', 'status: alert when the newest good backup is older (default: backup.max_age, 36h)')
  .option('--max-lock-hold <duration>', 'status: alert when a run holds the node lock longer (default: backup.max_lock_hold, 4h)')
  .action((action: string, flags: any) => dispatch(async () => (await import('./commands/backup.js')).backupCommand(action, typed(flags))));

cli
  .command('graph <name>', 'Draw a playbook (or the backup agent) from its definition: Mermaid, DOT, SVG or PNG (playbook parameters go after it)')
  .option('--format <format>', 'mermaid (default), dot, svg or png (default: from the -o extension)')
  .option('-o, --out <file>', 'write to FILE instead of stdout')
  .option('-i, --inventory <file>', 'draw rolling phases per shard with the real replicas of this inventory')
  .option('--limit <hosts>', 'only these hosts (comma-separated names)')
  .allowUnknownOptions()
  .action((name: string, flags: any) =>
    dispatch(async () => {
      const t = typed(flags);
      const { format, out, o, ...rest } = t;
      return (await import('./commands/graph.js')).graphCommand(name, t, await playbookFlags(rest));
    }),
  );

cli
  .command('report [run]', 'One self-contained HTML report of a run (default: the latest): timeline per host, downtime, gates, failures')
  .option('-i, --inventory <file>', 'inventory file (its state.dir holds the runs)', { default: 'inventory.yml' })
  .option('-o, --out <file>', 'write the report here (default: runs/<id>/report.html)')
  .option('--open', 'print the path of the report (to open it in a browser)')
  .option('--mermaid', 'print a Mermaid gantt of the run in Markdown instead')
  .action((run: string | undefined, flags: any) => dispatch(async () => (await import('./commands/report.js')).reportCommand(run, typed(flags))));

cli.help();
cli.version('0.1.0');

async function playbookFlags(flags: Record<string, unknown>): Promise<Record<string, unknown>> {
  return (await import('./commands/common.js')).playbookArgs(flags);
}

async function dispatch(fn: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await fn();
  } catch (err: any) {
    const { ChopsError } = await import('./errors.js');
    const { redactor } = await import('./secrets.js');
    const { printable } = await import('./inventory/values.js');
    // Whatever a message quotes (a path, a key, a flag) reaches the terminal escaped and short.
    const safe = (text: string) =>
      printable(redactor.redact(text))
        .split('\n')
        .map((l) => (l.length > 2000 ? `${l.slice(0, 2000)}... (${l.length} characters)` : l))
        .join('\n');
    if (err instanceof ChopsError) {
      process.stderr.write(`chops: ${safe(err.message)}\n${err.hint ? `  fix: ${safe(err.hint)}\n` : ''}`);
      process.exitCode = err.exitCode;
    } else if (err?.code === 'EMFILE' || err?.code === 'ENFILE') {
      process.stderr.write(`chops: ${safe(String(err?.message ?? err))}\n${descriptorHint()}`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`chops: internal error: ${safe(String(err?.stack ?? err))}\n`);
      process.exitCode = 70;
    }
  }
}

function descriptorHint(): string {
  return '  fix: the process ran out of file descriptors (each host needs about 2): raise the limit, e.g. `ulimit -n 4096` (hard limit: LimitNOFILE= or /etc/security/limits.conf), or run on fewer hosts at once with --parallel-hosts\n';
}

// An async function, not top-level await: the same code also runs as a CommonJS bundle.
void (async () => {
  try {
    const parsed = cli.parse(argv, { run: false });
    if (!cli.matchedCommand && !parsed.options.help && !parsed.options.version) {
      if (parsed.args.length) {
        const { show } = await import('./inventory/values.js');
        process.stderr.write(`chops: unknown command ${show(String(parsed.args[0]))}\n  fix: see \`chops --help\`\n`);
        process.exitCode = 2;
      } else cli.outputHelp();
    } else {
      await cli.runMatchedCommand();
    }
  } catch (err: any) {
    // cac throws CACError for missing args / unknown options
    const { printable } = await import('./inventory/values.js');
    process.stderr.write(`chops: ${printable(String(err?.message ?? err), { oneLine: true }).slice(0, 500)}\n  fix: see \`chops --help\`\n`);
    process.exitCode = 2;
  }
})();
