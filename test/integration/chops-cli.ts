// Moved to test/support/cli.ts (kept so older imports keep working).
export { CHOPS, chops, events, runIdOf } from '../support/cli.js';
export type { ProcResult as CliResult } from '../support/process.js';
