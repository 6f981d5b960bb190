// Reading secrets at the moment they are needed (never at load), so `inventory check` works
// without them and a secret lives in memory only while it is used.

import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import type { SecretRef } from './types.js';
import { redactor } from '../secrets.js';

/** The secret's value; `where` (file:line:col or host name) says which inventory entry asked for it. */
export async function readSecret(ref: SecretRef, where: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  // Every secret read is registered with the run-wide redactor before anyone can log it.
  const value = await readSecretValue(ref, where, env);
  redactor.add(value);
  return value;
}

async function readSecretValue(ref: SecretRef, where: string, env: NodeJS.ProcessEnv): Promise<string> {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined) {
      throw new UsageError(`${where}: environment variable ${ref.env} is not set (a secret referenced there)`, {
        hint: `export ${ref.env}=... before running chops`,
      });
    }
    return value;
  }
  return stripOneNewline(await readPrivateFile(ref.file, where));
}

async function readPrivateFile(file: string, where: string): Promise<string> {
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO put in place of the file must not hang chops.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by this user' : (err as Error).message;
    throw new UsageError(`${where}: secret file ${file} ${reason}`, { cause: err });
  }
  try {
    // fstat on the opened handle: the checked file is the file that is read.
    const stat = await handle.stat();
    if (!stat.isFile()) throw new UsageError(`${where}: secret file ${file} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw new UsageError(`${where}: secret file ${file} is accessible by group or others (mode ${mode}): chmod 600 ${file}`);
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** Files written by editors and `echo` end in a newline that is not part of the secret. */
function stripOneNewline(s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2);
  if (s.endsWith('\n')) return s.slice(0, -1);
  return s;
}
