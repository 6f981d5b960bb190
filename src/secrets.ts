// Every secret chops reads (ClickHouse passwords, key passphrases) is registered here, and every
// log line, state file, error and plan passes through this redactor before anyone sees it.
import { Redactor } from './run/redact.js';

export const redactor = new Redactor();
