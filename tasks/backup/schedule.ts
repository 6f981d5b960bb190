// Cron schedules of the backup agent: validated with cron-parser before anything is written,
// shifted per shard (stagger), and the next runs shown in the node's own time zone.
import { CronExpressionParser } from 'cron-parser';
import { UsageError } from '../../src/errors.js';

/**
 * A five-field expression that Debian's cron (Vixie cron) runs as cron-parser reads it.
 * cron-parser also accepts what cron does not (a seconds field, L, W, #, ?): refused here, since
 * a schedule that validates but never runs is the failure this check exists to prevent.
 */
export function validateCron(expr: string, where: string): void {
  const fields = expr.trim().split(/\s+/);
  const fail = (why: string): never => {
    throw new UsageError(`${where}: invalid cron expression ${JSON.stringify(expr)}: ${why}`, {
      hint: 'write five fields "minute hour day-of-month month day-of-week", e.g. "30 20 * * 6" (Saturday 20:30) or "0 * * * *" (hourly)',
    });
  };
  if (fields.length !== 5) fail(`expected 5 fields, found ${fields.length}`);
  if (/[LW#?]/i.test(expr.replace(/\b(sun|mon|tue|wed|thu|fri|sat|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\b/gi, '')))
    fail('L, W, # and ? are not understood by cron');
  try {
    CronExpressionParser.parse(expr, { strict: false });
  } catch (e: any) {
    fail(String(e?.message ?? e));
  }
}

/** The next N run times of EXPR in time zone TZ, as "YYYY-MM-DD HH:MM TZ" strings. */
export function nextRuns(expr: string, tz: string, n = 3, from = new Date()): string[] {
  const it = CronExpressionParser.parse(expr, { tz, currentDate: from });
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = it.next().toDate();
    const parts = new Intl.DateTimeFormat('en-CA', {
      timeZone: tz,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      weekday: 'short',
    }).formatToParts(d);
    const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
    out.push(`${get('weekday')} ${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')} ${tz}`);
  }
  return out;
}

/**
 * EXPR shifted by OFFSET minutes (the stagger of the k-th shard). Only a plain minute (and a
 * plain or `*` hour) can be shifted without changing what the schedule means.
 */
export function staggerCron(expr: string, offsetMinutes: number, where: string): string {
  if (offsetMinutes === 0) return expr;
  const [min, hour, ...rest] = expr.trim().split(/\s+/);
  if (!/^\d+$/.test(min)) {
    throw new UsageError(`${where}: cannot stagger ${JSON.stringify(expr)}: its minute field is not a single number`, {
      hint: 'use a plain minute (e.g. "0 * * * *") or set backup.stagger: 0s',
    });
  }
  const total = Number(min) + offsetMinutes;
  if (hour === '*' || /^\*\/\d+$/.test(hour)) {
    if (total >= 60)
      throw new UsageError(`${where}: stagger of ${offsetMinutes} min moves ${JSON.stringify(expr)} past the hour`, { hint: 'use a smaller backup.stagger' });
    return [String(total), hour, ...rest].join(' ');
  }
  if (!/^\d+$/.test(hour))
    throw new UsageError(`${where}: cannot stagger ${JSON.stringify(expr)}: its hour field is not a single number or *`, { hint: 'set backup.stagger: 0s' });
  const h = Number(hour) + Math.floor(total / 60);
  if (h >= 24)
    throw new UsageError(`${where}: stagger moves ${JSON.stringify(expr)} past midnight`, { hint: 'use a smaller backup.stagger or an earlier hour' });
  return [String(total % 60), String(h), ...rest].join(' ');
}
