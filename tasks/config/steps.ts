// The steps of config-push on one node. Phase "compare and validate" (every node, in parallel)
// decides and checks; phase "apply" (rolling) changes. Between them every node's candidate
// configuration has been accepted by its server's own preprocessing, so a broken file stops the
// run before any node has a file replaced.
import type { Step, StepContext, StepResult } from '../../src/engine/playbook.js';
import { ChopsError } from '../../src/errors.js';
import { chClient } from '../../src/clickhouse/client.js';
import { formatDuration } from '../../src/format.js';
import { redactor } from '../../src/secrets.js';
import { raw, shq } from '../../src/quote.js';
import { currentConfig, type CurrentConfig } from '../../facts/config/files.js';
import type { RenderedFile } from '../../templates/config/types.js';
import { isChopsOwned } from '../../templates/config/xml.js';
import { serviceState, startService, stopService } from '../clickhouse/service.js';
import { BACKUP_ROOT, CONFIG_ROOT, desiredFiles, sha256, targetPath } from './files.js';
import { unifiedDiff } from './diff.js';
import { combine, treeOf, type Effect, type Verify } from './reload-table.js';
import { changedSections } from './sections.js';
import { validateOnNode } from './validate.js';
import { waitConfigVisible } from './verify.js';

export type Decision = 'unchanged' | Effect;

export interface FileChange {
  dir: 'config.d' | 'users.d';
  name: string;
  state: 'new' | 'changed';
  sections: string[];
  effect: Effect;
  verify: Verify[];
}

/** What the compare step decided for a node (host memory: later steps, rollbacks, resumes read it). */
export interface PushPlan {
  decision: Decision;
  changes: FileChange[];
  /** sha256 of every file validated on the node: the write step writes exactly these. */
  validated: Record<string, string>;
  group: string;
}

const PLAN_KEY = 'config-push.plan';
const MODE = '0640'; // root:<server group>: the server reads it, nobody else (users.d holds password hashes)

/** The node's desired files, rendered once per run (operator files were read before connecting). */
function desired(ctx: StepContext<any>, operator: RenderedFile[]): RenderedFile[] {
  const k = `config-push:files:${ctx.host.name}`;
  let f = ctx.run.shared.get(k) as RenderedFile[] | undefined;
  if (!f) {
    f = desiredFiles(ctx.run.inventory, ctx.host.def, operator);
    ctx.run.shared.set(k, f);
  }
  return f;
}

function readCurrent(ctx: StepContext<any>, files: RenderedFile[]): Promise<CurrentConfig> {
  return ctx.host.fact(currentConfig, { paths: files.map(targetPath), dataDir: ctx.host.def.clickhouse.dataDir });
}

function planOf(ctx: StepContext<any>): PushPlan {
  const p = ctx.memory.get<PushPlan>(PLAN_KEY);
  if (!p) throw new ChopsError(`${ctx.host.name}: config-push has no comparison for this node`, { hint: 'start a new run: chops run config-push' });
  return p;
}

const wantStat = (group: string) => `${Number.parseInt(MODE, 8).toString(8)} root ${group}`;

function refuseForeign(node: string, path: string): never {
  throw new ChopsError(`${node}: ${path} exists and is not managed by chops (no "Managed by chops" header): chops never touches it`, {
    hint: 'give the file another name in the source, or move the node’s own file aside if chops should own that name',
  });
}

/** Compare the rendered files with the node's, decide reload / restart / unchanged, show the diff. */
export function compareStep(operator: RenderedFile[]): Step {
  return {
    name: 'compare files',
    description: 'render the files, read the node’s, diff; decide reload, restart or unchanged',
    skipIf: 'every file already right',
    run: async (ctx): Promise<StepResult> => {
      const files = desired(ctx, operator);
      const cur = await readCurrent(ctx, files);
      if (!cur.serverGroup)
        throw new ChopsError(`${ctx.host.name}: cannot tell the server's group (owner of ${ctx.host.def.clickhouse.dataDir})`, {
          hint: 'check clickhouse.data_dir in the inventory',
        });
      const changes: FileChange[] = [];
      const diffs: string[] = [];
      files.forEach((f, i) => {
        const c = cur.files[i];
        if (c.exists && !isChopsOwned(c.content ?? '')) refuseForeign(ctx.host.name, c.path);
        const sameContent = c.exists && c.sha === sha256(f.content);
        if (sameContent && c.stat === wantStat(cur.serverGroup)) return;
        const sections = sameContent ? [] : changedSections(treeOf(f.dir), f.name, c.exists ? c.content : undefined, f.content);
        changes.push({
          dir: f.dir,
          name: f.name,
          state: c.exists ? 'changed' : 'new',
          sections: sections.map((s) => s.section),
          effect: combine(sections),
          verify: [...new Set(sections.map((s) => s.verify))],
        });
        diffs.push(
          sameContent ? `${c.path}: mode/owner ${c.stat} → ${wantStat(cur.serverGroup)}` : unifiedDiff(c.path, c.exists ? c.content : undefined, f.content),
        );
      });
      const decision: Decision = changes.length === 0 ? 'unchanged' : combine(changes);
      const validated = Object.fromEntries(files.map((f) => [targetPath(f), sha256(f.content)]));
      ctx.memory.set(PLAN_KEY, { decision, changes, validated, group: cur.serverGroup } satisfies PushPlan);
      if (decision === 'unchanged')
        return { changed: false, skipped: `${files.length} file${files.length === 1 ? '' : 's'} already right`, data: { decision } };
      const diff = redactor.redact(diffs.join('\n'));
      const what = changes.map((c) => `${c.dir}/${c.name} ${c.state} [${c.sections.join(', ') || 'comments, mode or owner only'}] → ${c.effect}`).join('; ');
      return { changed: false, note: `${decision.toUpperCase()}: ${what}\n${diff}`, data: { decision, changes, diff } };
    },
  };
}

export function validateStep(operator: RenderedFile[]): Step {
  return {
    name: 'validate on node',
    description: 'the full candidate config staged in a temp dir, read by the server’s own preprocessing',
    skipIf: 'unchanged',
    run: async (ctx) => {
      const p = planOf(ctx);
      if (p.decision === 'unchanged') return { changed: false, skipped: 'files already right' };
      const v = await validateOnNode(ctx, desired(ctx, operator));
      return { changed: false, note: `accepted by ${v.validator} (config.xml, users.xml)`, data: { validator: v.validator } };
    },
  };
}

/** A step of the gated restart that only runs on a node whose change needs a restart. */
export function onlyForRestart(step: Step): Step {
  return {
    ...step,
    skipIf: 'no restart needed (reload or unchanged)',
    run: async (ctx) => {
      const d = planOf(ctx).decision;
      if (d !== 'restart') return { changed: false, skipped: d === 'unchanged' ? 'files already right' : 'reload, no restart' };
      return step.run(ctx);
    },
    ...(step.rollback
      ? {
          rollback: async (ctx: StepContext<any>) => {
            if (planOf(ctx).decision === 'restart') await step.rollback!(ctx);
          },
        }
      : {}),
  };
}

// stdin: "<dir>/<name> <base64> <backup path>" per line; G the server's group. The previous
// version is copied aside only when no backup of this run exists yet; the new one goes to a
// dot-file in the same directory (the server's config scan skips names starting with '.'),
// is fsynced, then renamed over the old one.
function writeScript(group: string): string {
  return [
    `set -eu; umask 077; g=${shq(group)}; tmp=`,
    `trap 'rm -f -- "$tmp"' EXIT`,
    'while read -r rel b64 backup; do',
    `  t=${CONFIG_ROOT}/$rel`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
    '  if [ -e "$t" ] && [ ! -e "$backup" ]; then mkdir -p -m 0700 -- "${backup%/*}"; cp -p -- "$t" "$backup.tmp"; mv -f -- "$backup.tmp" "$backup"; fi',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
    '  tmp="${t%/*}/.chops-put.$$"',
    `  printf '%s' "$b64" | base64 -d > "$tmp"`,
    `  chown "root:$g" "$tmp"; chmod ${MODE} "$tmp"; sync -- "$tmp"`,
    '  mv -f -- "$tmp" "$t"; tmp=',
    'done',
  ].join('\n');
}

const backupPath = (ctx: StepContext<any>, f: { dir: string; name: string }) => `${BACKUP_ROOT}/${ctx.run.runId ?? 'plan'}/${f.dir}/${f.name}`;

/**
 * Write the changed files: the previous version to BACKUP_ROOT/<run>/ first (once per run: a
 * resumed run never overwrites the original with what it wrote itself), then the new content to
 * a temp file in the same directory renamed over the old one (host.putFile: `.chops-put.*`, a
 * name the server's config scan skips). On a restart node this runs while the server is down.
 */
export function writeFilesStep(operator: RenderedFile[]): Step {
  return {
    name: 'write files',
    description: 'previous version kept under /var/backups/chops-config/<run>/, new one written atomically',
    skipIf: 'every file already right',
    run: async (ctx) => {
      const p = planOf(ctx);
      if (p.decision === 'unchanged') return { changed: false, skipped: 'files already right' };
      const files = desired(ctx, operator);
      for (const f of files)
        if (p.validated[targetPath(f)] !== sha256(f.content))
          throw new ChopsError(`${ctx.host.name}: ${targetPath(f)} differs from what was validated on the node (the source changed during the run)`, {
            hint: 'start a new run: chops run config-push (it validates again)',
          });
      const t0 = performance.now();
      const cur = await readCurrent(ctx, files);
      const todo = files.filter((f, i) => {
        const c = cur.files[i];
        if (c.exists && c.sha === sha256(f.content) && c.stat === wantStat(p.group)) return false;
        if (c.exists && !isChopsOwned(c.content ?? '')) refuseForeign(ctx.host.name, c.path);
        return true;
      });
      // One command for every file (content on stdin, base64 per line): fewer round trips than
      // a put per file, and the plan shows the command, the compare step's diff the content.
      if (todo.length) {
        const stdin = `${todo.map((f) => `${f.dir}/${f.name} ${Buffer.from(f.content, 'utf8').toString('base64')} ${backupPath(ctx, f)}`).join('\n')}\n`;
        await ctx.host.$({ stdin, timeoutMs: 60_000 })`${raw(writeScript(p.group))}`;
      }
      const written = todo.map((f) => `${f.dir}/${f.name}`);
      const writeMs = Math.round(performance.now() - t0);
      ctx.memory.set('config-push.writeMs', writeMs);
      if (!written.length) return { changed: false, skipped: 'already written' };
      return {
        note: `wrote ${written.join(', ')} in ${formatDuration(writeMs)} (previous versions in ${BACKUP_ROOT}/${ctx.run.runId ?? 'plan'}/)`,
        data: { written, writeMs },
      };
    },
    // The previous versions back (a file that was new is removed), then the server is made to
    // use them: a reload, or — on a restart node whose server already runs the new files — a
    // restart (on a node whose start failed, the stop step's rollback starts it afterwards).
    rollback: async (ctx) => {
      const p = planOf(ctx);
      if (p.decision === 'unchanged') return;
      for (const c of p.changes) {
        const t = `${CONFIG_ROOT}/${c.dir}/${c.name}`;
        const b = backupPath(ctx, c);
        if (c.state === 'changed') await ctx.host.$`[ ! -e ${b} ] || { cp -p -- ${b} ${`${t}.chops-restore`} && mv -f -- ${`${t}.chops-restore`} ${t}; }`;
        else await ctx.host.$`[ ! -e ${t} ] || ! grep -q -F 'Managed by chops' -- ${t} || rm -f -- ${t}`;
      }
      if (p.decision === 'reload') {
        const ch = await chClient(ctx.run, ctx.host.def);
        await ch.command('SYSTEM RELOAD CONFIG');
      } else if ((await serviceState(ctx.host)) === 'active') {
        await stopService(ctx.host);
        await startService(ctx.host);
      }
    },
  };
}

/** Reload (reload nodes), then wait until the new values are visible (reload and restart nodes). */
export function reloadVerifyStep(operator: RenderedFile[]): Step {
  return {
    name: 'reload and verify',
    description: 'SYSTEM RELOAD CONFIG where the change reloads; the new values visible in system tables',
    waitsFor: 'system.clusters / system.macros / system.settings show the new values',
    skipIf: 'unchanged',
    run: async (ctx) => {
      const p = planOf(ctx);
      if (p.decision === 'unchanged') return { changed: false, skipped: 'files already right' };
      const t0 = performance.now();
      let reloadMs = 0;
      if (p.decision === 'reload') {
        const ch = await chClient(ctx.run, ctx.host.def);
        await ch.command('SYSTEM RELOAD CONFIG');
        reloadMs = Math.round(performance.now() - t0);
      }
      const rendered = desired(ctx, operator);
      const files = p.changes.map((c) => ({
        dir: c.dir,
        name: c.name,
        verify: c.verify,
        content: rendered.find((f) => f.dir === c.dir && f.name === c.name)?.content ?? '',
      }));
      // A plan reloaded nothing: the old values are still what the server shows.
      const seen = await ctx.host.whenApplied<{ value: string; elapsedMs: number } | undefined>(undefined, () =>
        waitConfigVisible(
          ctx,
          files.filter((f) => f.verify.length),
        ),
      );
      const stepMs = Math.round(performance.now() - t0);
      const writeMs = ctx.memory.get<number>('config-push.writeMs') ?? 0;
      const head = p.decision === 'reload' ? `reloaded (SYSTEM RELOAD CONFIG ${formatDuration(reloadMs)})` : 'after the restart';
      return {
        changed: p.decision === 'reload',
        note: seen ? `${head}; new config visible after ${formatDuration(stepMs - reloadMs)}: ${seen.value}` : `${head}; would check the new values`,
        data: { decision: p.decision, reloadMs, verifyMs: stepMs - reloadMs, stepMs, writeMs },
      };
    },
  };
}
