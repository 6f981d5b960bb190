// Opening a file the operator named (the inventory, an SSH key, a known_hosts file) without being
// fooled by what is there instead: O_NONBLOCK, so a FIFO put there cannot hang chops, and only a
// regular file is accepted. Each caller words the refusal for its own file.
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

export type NotRegular = 'a directory' | 'a FIFO' | 'a device' | 'a socket' | 'not a regular file';

export type OpenedFile =
  | { ok: true; handle: FileHandle; size: number; notRegular?: undefined }
  /**
   * Not opened: it is there but NOT_REGULAR (closed again), or it could not be opened or stat'ed
   * (ERROR, with CODE the errno name when there is one).
   */
  | { ok: false; notRegular?: NotRegular; code?: string; error?: unknown };

/** PATH opened read-only when it is a regular file; the caller closes the handle. */
export async function openRegularFile(path: string): Promise<OpenedFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return { ok: false, code: (error as NodeJS.ErrnoException).code, error };
  }
  try {
    const st = await handle.stat();
    if (st.isFile()) return { ok: true, handle, size: st.size };
    await handle.close();
    const notRegular = st.isDirectory()
      ? 'a directory'
      : st.isFIFO()
        ? 'a FIFO'
        : st.isCharacterDevice() || st.isBlockDevice()
          ? 'a device'
          : st.isSocket()
            ? 'a socket'
            : 'not a regular file';
    return { ok: false, notRegular };
  } catch (error) {
    await handle.close();
    return { ok: false, code: (error as NodeJS.ErrnoException).code, error };
  }
}
