// Headless Debian Chromium driven by playwright-core, with no network: pages get their content
// and scripts from this machine only (Mermaid from node_modules), so a test proves the files
// render offline exactly as an operator's browser would show them.
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO } from '../support/process.js';

export const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}

/** A page that refuses every request that would leave this machine (http/https/ws). */
export async function offlinePage(browser: Browser): Promise<{ page: Page; blocked: string[]; errors: string[] }> {
  const page = await browser.newPage();
  const blocked: string[] = [];
  const errors: string[] = [];
  await page.route(/^(https?|wss?):/, (route) => {
    blocked.push(route.request().url());
    return route.abort();
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return { page, blocked, errors };
}

/** The real Mermaid renderer, loaded from node_modules into PAGE (once). */
export async function loadMermaid(page: Page): Promise<void> {
  await page.setContent('<!doctype html><html><head><meta charset="utf-8"></head><body><div id="out"></div></body></html>');
  await page.addScriptTag({ path: path.join(REPO, 'node_modules/mermaid/dist/mermaid.min.js') });
  await page.evaluate(() => (window as any).mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' }));
}

/** Parse and render TEXT with Mermaid: the SVG, or the parser's error message. */
export async function renderMermaid(page: Page, text: string, id: string): Promise<{ svg?: string; error?: string }> {
  return page.evaluate(
    async ([src, id]) => {
      const m = (window as any).mermaid;
      try {
        await m.parse(src);
        const { svg } = await m.render(id, src);
        document.getElementById('out')!.innerHTML = svg;
        return { svg };
      } catch (e: any) {
        return { error: String(e?.message ?? e) };
      }
    },
    [text, id] as const,
  );
}
