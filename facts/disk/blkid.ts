// Signatures on one device as blkid's low-level probe reads them from the device itself
// (-p: no cache, no udev), so a disk that udev has not caught up with is still seen as used.
import { ChopsError } from '../../src/errors.js';
import { defineFact } from '../../src/fact.js';
import { sh } from '../../src/quote.js';

/** KEY=VALUE pairs (TYPE, UUID, PTTYPE, PTUUID, PART_ENTRY_TYPE, ...); empty = no signature. */
export type Signatures = Record<string, string>;

/** Pure: `blkid -p -o export DEV` output and exit code → its signatures. Exit 2 = nothing found. */
export function parseBlkid(stdout: string, code: number, stderr = '', device = 'the device'): Signatures {
  if (code === 2) return {};
  if (code !== 0) throw new ChopsError(`blkid -p ${device} exited ${code}: ${stderr.trim().slice(0, 300) || stdout.trim().slice(0, 300)}`);
  const out: Signatures = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  if (Object.keys(out).length === 0) throw new ChopsError(`blkid -p ${device} exited 0 but printed no KEY=VALUE line: ${stdout.trim().slice(0, 200)}`);
  return out;
}

/** What the signatures say, for a refusal message ("a dos partition table", "an ext4 filesystem"). */
export function describeSignatures(s: Signatures): string[] {
  const what: string[] = [];
  if (s.PTTYPE) what.push(`a ${s.PTTYPE} partition table`);
  if (s.TYPE) what.push(s.TYPE === 'LVM2_member' ? 'an LVM physical volume' : `a ${s.TYPE} ${s.USAGE === 'raid' ? 'RAID member' : 'signature'}`);
  return what;
}

export const blkidProbe = defineFact({
  name: 'blkid probe',
  command: (device: string) => sh`blkid -p -o export -- ${device}`,
  parse: ({ stdout, stderr, code }, device: string) => parseBlkid(stdout, code, stderr, device),
});
