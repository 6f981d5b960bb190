// Replace a file whole, so that readers (and a crash) see the old or the new content, never a mix.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pidAlive } from '../proc.js';

/**
 * temp file in the same directory + rename. With `durable` (the default) the data and the
 * rename are fsync'ed too, which survives a crash of the machine, not only of chops.
 */
export async function writeFileAtomic(file: string, text: string, opts: { durable?: boolean } = {}): Promise<void> {
  const durable = opts.durable ?? true;
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx', 0o600);
    await fh.writeFile(text, 'utf8');
    if (durable) await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, file);
  } catch (err) {
    await fh?.close().catch(() => {});
    await fsp.unlink(tmp).catch(() => {});
    throw err;
  }
  if (durable) await syncDir(dirname(file));
}

/** Make a rename or unlink in DIR durable; not every platform lets a directory be fsync'ed. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const d = await fsp.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* best effort */
  }
}

/** Remove `<name>.<pid>.<hex>.tmp` files next to FILE left by writers that died mid-write (their pid is gone). */
export async function sweepTempFiles(file: string): Promise<void> {
  const dir = dirname(file);
  const name = basename(file);
  let entries: string[];
  try {
    entries = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(`${name}.`) || !e.endsWith('.tmp')) continue;
    const pid = Number(e.slice(name.length + 1).split('.')[0]);
    if (pid === process.pid || pidAlive(pid)) continue;
    await fsp.unlink(join(dir, e)).catch(() => {});
  }
}
