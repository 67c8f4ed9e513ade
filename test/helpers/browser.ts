import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from './cli.js';

/**
 * Opens HTML reports in Debian's chromium through playwright-core: nothing downloads a browser
 * (`.ci/run` installs chromium when it is missing). Every page records its console errors, page
 * errors and any request that is not to a file: (a self-contained report makes none).
 */

export const chromiumPath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** Where the browser tests save their screenshots (gitignored). */
export const artifactsDir = join(repoRoot, 'test-artifacts', 'report');

export interface OpenedReport {
  page: Page;
  /** Console errors and warnings, uncaught exceptions, network requests: all should stay empty. */
  problems: string[];
  /** ms from navigation start until the report's script had built the page. */
  renderMs: number;
}

export interface Browser {
  open(path: string, viewport?: { width: number; height: number }): Promise<OpenedReport>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath)) throw new Error(`no chromium at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  const profile = mkdtempSync(join(tmpdir(), 'tasker-chromium-'));
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  const context: BrowserContext = await chromium.launchPersistentContext(profile, { executablePath: chromiumPath, headless: true, args, viewport: { width: 1400, height: 1000 } });
  return {
    async open(path, viewport) {
      const page = await context.newPage();
      if (viewport !== undefined) await page.setViewportSize(viewport);
      const problems: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('request', (request) => {
        if (!request.url().startsWith('file:')) problems.push(`request: ${request.url()}`);
      });
      await page.goto(`file://${path}`);
      await page.waitForSelector('body[data-rendered="true"]', { timeout: 30_000 });
      const renderMs = Number(await page.getAttribute('body', 'data-render-ms'));
      return { page, problems, renderMs };
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a screenshot (of the whole page, or what the viewport shows) under test-artifacts/report/ and returns its path. */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const path = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}

/** A number as the report prints it ("1,234" → 1234). */
export function shownNumber(text: string | null): number {
  return Number((text ?? '').replace(/,/g, ''));
}
