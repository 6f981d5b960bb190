// LVM's view: physical volumes, volume groups, logical volumes (one probe, three JSON reports).
import { ChopsError } from '../../src/errors.js';
import { defineFact } from '../../src/fact.js';
import { raw } from '../../src/quote.js';

export interface PhysicalVolume {
  name: string;
  vg: string;
  size: number;
  uuid: string;
}
export interface VolumeGroup {
  name: string;
  size: number;
  free: number;
  pvCount: number;
  lvCount: number;
}
export interface LogicalVolume {
  name: string;
  vg: string;
  path: string;
  dmPath: string;
  size: number;
}
export interface LvmReport {
  pvs: PhysicalVolume[];
  vgs: VolumeGroup[];
  lvs: LogicalVolume[];
}

const REPORTS = {
  pvs: 'pvs --reportformat json --units b --nosuffix -o pv_name,vg_name,pv_size,pv_uuid',
  vgs: 'vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,pv_count,lv_count',
  lvs: 'lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_path,lv_dm_path,lv_size',
} as const;

export function lvmCommand(): string {
  // each report behind a marker line with its exit code: one failing report is not mistaken for "none"
  return Object.entries(REPORTS)
    .map(([k, c]) => `echo @@${k}; ${c} 2>&1; echo "@@rc $?"`)
    .join('; ');
}

function num(v: unknown, what: string): number {
  const n = Number(v);
  if (v === '' || v === undefined || !Number.isFinite(n)) throw new ChopsError(`LVM report: ${what} is not a number (${JSON.stringify(v)})`);
  return n;
}

/** Pure: the output of lvmCommand() → the three reports. */
export function parseLvm(stdout: string): LvmReport {
  const sections: Record<string, { text: string; rc?: number }> = {};
  let cur = '';
  for (const line of stdout.split('\n')) {
    const head = /^@@(pvs|vgs|lvs)$/.exec(line);
    const rc = /^@@rc (\d+)$/.exec(line);
    if (head) {
      cur = head[1];
      sections[cur] = { text: '' };
    } else if (rc && cur) {
      sections[cur].rc = Number(rc[1]);
      cur = '';
    } else if (cur) sections[cur].text += `${line}\n`;
  }
  const rows = (k: 'pvs' | 'vgs' | 'lvs', key: 'pv' | 'vg' | 'lv'): any[] => {
    const s = sections[k];
    if (!s || s.rc === undefined) throw new ChopsError(`LVM report ${k} is missing from the output`);
    if (s.rc !== 0) throw new ChopsError(`${k} exited ${s.rc}: ${s.text.trim().slice(-300)}`, { hint: 'disk preparation needs lvm2 (apt-get install lvm2)' });
    // LVM may print warnings before the JSON document: start at the first "{"
    const text = s.text.slice(s.text.indexOf('{'));
    let j: any;
    try {
      j = JSON.parse(text);
    } catch {
      throw new ChopsError(`${k} printed no JSON report: ${s.text.trim().slice(0, 200)}`);
    }
    const rep = j?.report?.[0]?.[key];
    if (!Array.isArray(rep)) throw new ChopsError(`${k} JSON has no report[0].${key} list`);
    return rep;
  };
  return {
    pvs: rows('pvs', 'pv').map((r) => ({ name: r.pv_name, vg: r.vg_name ?? '', size: num(r.pv_size, `size of PV ${r.pv_name}`), uuid: r.pv_uuid ?? '' })),
    vgs: rows('vgs', 'vg').map((r) => ({
      name: r.vg_name,
      size: num(r.vg_size, `size of VG ${r.vg_name}`),
      free: num(r.vg_free, `free of VG ${r.vg_name}`),
      pvCount: num(r.pv_count, 'pv_count'),
      lvCount: num(r.lv_count, 'lv_count'),
    })),
    lvs: rows('lvs', 'lv').map((r) => ({
      name: r.lv_name,
      vg: r.vg_name,
      path: r.lv_path ?? '',
      dmPath: r.lv_dm_path ?? '',
      size: num(r.lv_size, `size of LV ${r.lv_name}`),
    })),
  };
}

export const lvmReport = defineFact({
  name: 'LVM report',
  command: (_: void) => `${raw(lvmCommand()).text}`,
  parse: ({ stdout }) => parseLvm(stdout),
});
