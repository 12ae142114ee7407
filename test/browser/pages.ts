// What the web app's browser tests (web.test.ts, web-tracks.test.ts) share: where the README's screenshots go,
// the browser, and opening a page of the platform that records its console errors.
import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';

/** The README's screenshots (docs/screenshots), rewritten by the browser tests. */
export const SHOTS = new URL('../../docs/screenshots/', import.meta.url).pathname;

/** Chromium (launchChromium) with a fresh context; the screenshot folder made. */
export async function openBrowser(): Promise<{ browser: Browser; context: BrowserContext }> {
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    mkdirSync(SHOTS, { recursive: true });
    return { browser, context };
  } catch (err) {
    await browser.close();
    throw err;
  }
}

/**
 * Signs `context` in as the platform's admin: its login session's `sc_session` cookie, for the platform's origin (the
 * web app reads the CSRF token of that session from GET /api/me).
 */
export async function signIn(context: BrowserContext, p: { url: string; admin: { cookie: string } }): Promise<void> {
  await context.addCookies([{ name: 'sc_session', value: p.admin.cookie, url: p.url }]);
}

/**
 * Opens `base + path` in a new page of `context` at `viewport`; its console errors and uncaught exceptions are
 * pushed onto `consoleErrors`, each prefixed with `path`.
 */
export async function openPage(
  context: BrowserContext,
  base: string,
  path: string,
  viewport: { width: number; height: number },
  consoleErrors: string[],
): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${path}: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`${path}: ${e.message}`));
  await page.goto(base + path);
  return page;
}
