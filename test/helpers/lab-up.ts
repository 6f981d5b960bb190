// Moved to test/support/lab.ts (kept so older imports keep working).
import { clickhouseLab, labSh, type TestLab } from '../support/lab.js';

export type { TestLab };
export const upClickHouseLab = clickhouseLab;
export const labExec = labSh;
