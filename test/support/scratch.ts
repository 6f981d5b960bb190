// A scratch directory for one test file: made before its tests, removed after them (whatever
// they did), with a fresh subdirectory per call so tests never see each other's files.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

/** Call at the top of a test file; the returned function names a new, not yet created, directory inside it. */
export function scratchDirs(prefix: string): () => string {
  let root: string | undefined;
  let n = 0;
  before(() => {
    root = mkdtempSync(join(tmpdir(), `${prefix}-`));
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });
  return () => {
    if (!root) throw new Error('scratchDirs: asked for a directory before the tests started');
    return join(root, `s${n++}`);
  };
}
