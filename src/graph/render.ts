// SVG and PNG come from Graphviz `dot` (Debian package graphviz), fed the DOT text on stdin.
import { UsageError } from '../errors.js';

export type ImageFormat = 'svg' | 'png';

export async function renderDot(dot: string, format: ImageFormat): Promise<Buffer> {
  const { execa } = await import('execa');
  try {
    const r = await execa('dot', [`-T${format}`], { input: dot, encoding: 'buffer', timeout: 60_000 });
    return Buffer.from(r.stdout);
  } catch (err: any) {
    if (err?.code === 'ENOENT') {
      throw new UsageError('Graphviz `dot` is not installed: SVG and PNG are rendered with it', {
        hint: 'apt-get install graphviz (or use --format mermaid|dot)',
      });
    }
    const stderr = err?.stderr ? Buffer.from(err.stderr).toString('utf8').trim() : '';
    throw new Error(`dot -T${format} failed (exit ${err?.exitCode ?? '?'}): ${stderr || err?.shortMessage || err}`);
  }
}
