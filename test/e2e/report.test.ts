import { copyFileSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { launchBrowser, screenshot, shownNumber, type Browser, type OpenedReport } from '../helpers/browser.js';
import { isoTickLabel, readPage } from '../helpers/report-page-checks.js';
import { readResults, repoRoot, runTasker, startTasker, useWorkspaces, type ResultLine } from '../helpers/cli.js';
import { readyWorker, spawnTasker, useTestNamespace, waitFor } from '../helpers/distributed.js';

/**
 * The HTML report of real runs, opened in Debian's chromium: the built tasker runs a jobs file
 * with failures, a retry that succeeds and a timeout, locally and through RabbitMQ to workers;
 * the page must load without a console error or a network request, show the numbers
 * results.jsonl holds, and list the failed commands. Screenshots go to test-artifacts/report/.
 */

const services = { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
const workspace = useWorkspaces();
const distributed = useTestNamespace(services, 'tasker-report-');

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

/** Two phases: a command that fails for good (exit 3), one that times out, one that fails once and then succeeds. */
function jobsWithFailures(dir: string): string {
  const path = join(dir, 'jobs.sh');
  writeFileSync(
    path,
    [
      '# phase: prepare (tasker)',
      'mkdir -p out',
      '# phase: simulate',
      'bash ev.sh 0.2',
      'bash ev.sh 0.1',
      "bash -c 'echo diverged at step 4711 >&2; exit 3'",
      'sleep 30',
      'test -e out/flaky || { touch out/flaky; echo first try fails; exit 1; }',
      'bash ev.sh 0.3',
      '# phase: collect',
      'bash ev.sh 0',
      '',
    ].join('\n'),
  );
  return path;
}

const runFlags = ['--retries', '1', '--retry-delay', '50ms', '--timeout', '1s', '--kill-grace', '200ms', '--keep-going'];

/** Commands whose last attempt did not succeed, from results.jsonl. */
function failedIds(results: ResultLine[]): string[] {
  const last = new Map<string, ResultLine>();
  for (const result of results) if ((last.get(result.id)?.attempt ?? 0) < result.attempt) last.set(result.id, result);
  return [...last.values()].filter((result) => result.outcome !== 'succeeded').map((result) => result.id).sort();
}

/** A page expression (this project compiles without the DOM's types): the report shows this state. */
function stateIs(state: string): string {
  return `document.querySelector('[data-testid="state"]').textContent === '${state}'`;
}

async function fact(opened: OpenedReport, key: string): Promise<number> {
  return shownNumber(await opened.page.textContent(`[data-fact="${key}"]`));
}

/** What every report of the run with failures must show, checked against its results.jsonl; `runsOn`: what ran the simulate phase. */
async function expectReportMatches(opened: OpenedReport, results: ResultLine[], runsOn: 'local slots' | 'workers'): Promise<void> {
  const { page } = opened;
  expect(opened.problems).toEqual([]);
  expect(await page.textContent('[data-testid="state"]')).toBe('failed');
  expect(await fact(opened, 'attempts')).toBe(results.length);
  expect(await fact(opened, 'done')).toBe(results.filter((r) => r.outcome === 'succeeded').length);
  expect(await fact(opened, 'failed')).toBe(failedIds(results).length);
  expect(await fact(opened, 'commands')).toBe(8);
  expect(await fact(opened, 'exit-code')).toBe(1);
  expect(await fact(opened, 'retried-ok')).toBe(1);
  // The command a retry rescued is named (the flaky one, line 8).
  expect(await page.locator('[data-testid="retried"] tbody tr').allTextContents()).toEqual(['f1-L8simulate2']);
  expect(await page.textContent('[data-testid="resume"]')).toContain('run --resume');
  // The failure table: one row per failed command, with its reason.
  const rows = page.locator('[data-testid="failures"] tbody tr');
  expect(await rows.count()).toBe(failedIds(results).length);
  const table = (await page.textContent('[data-testid="failures"]')) ?? '';
  for (const id of failedIds(results)) expect(table).toContain(id);
  expect(table).toContain('exit 3');
  expect(table).toContain('timed out after 1.0s');
  expect(table).toContain('2 attempts');
  // Per phase: the commands done, as results.jsonl has them.
  const phaseRows = await page.locator('[data-testid="phases"] tbody tr').allTextContents();
  expect(phaseRows).toHaveLength(3);
  const simulateDone = results.filter((r) => r.phase === 'simulate' && r.outcome === 'succeeded').length;
  const cells = await page.locator('[data-testid="phases"] tbody tr:nth-child(2) td').allTextContents();
  expect(cells.slice(0, 5)).toEqual(['simulate', runsOn, 'failed', '6', String(simulateDone)]);
  // Per worker: every attempt counted once.
  const workerAttempts = await page.locator('[data-testid="workers"] tbody tr td:nth-child(2)').allTextContents();
  expect(workerAttempts.map(shownNumber).reduce((a, b) => a + b, 0)).toBe(results.length);
  expect(await page.locator('[data-testid="running-chart"] canvas').count()).toBeGreaterThan(0);
  // A local run's words: its commands ran on the tasker's local slots, there are no workers (nor a priority).
  const headings = await page.locator('h2').allTextContents();
  const header = (await page.textContent('[data-testid="run-line"]')) ?? '';
  if (runsOn === 'local slots') {
    expect(headings).toEqual(expect.arrayContaining(['Timeline of the local slots', 'Where the commands ran (the tasker, on its local slots)']));
    expect(headings.filter((heading) => /worker/i.test(heading))).toEqual([]);
    expect(header).toContain('local run');
    expect(header).not.toMatch(/priority/);
  } else {
    expect(headings).toEqual(expect.arrayContaining(['Timeline per worker', expect.stringMatching(/^Workers \(\d+\)$/)]));
  }
}

describe('the HTML report', () => {
  it('of a local run with failures, a retry and a timeout: named in the summary, numbers as in results.jsonl', async () => {
    const ws = workspace();
    const result = await runTasker(['run', '-j', '3', '--run-id', 'local-report', '--workdir', ws.dir, ...runFlags, jobsWithFailures(ws.dir)]);
    expect(result.exitCode, result.stderr).toBe(1);
    const reportPath = join(ws.dir, '.tasker', 'runs', 'local-report', 'report.html');
    expect(result.stdout).toContain(`\nReport:  ${reportPath}\n`);
    const opened = await browser.open(reportPath);
    const results = readResults(ws.dir, 'local-report');
    expect(result.stdout).toContain('Succeeded after a retry (--retries): 1 command: f1-L8 (2 attempts)');
    await expectReportMatches(opened, results, 'local slots');
    const shot = await screenshot(opened.page, 'local-run');
    // The README's picture: the top of the page, as a user first sees it.
    await opened.page.setViewportSize({ width: 1280, height: 1500 });
    const top = join(repoRoot, 'test-artifacts', 'report', 'readme.png');
    await opened.page.screenshot({ path: top });
    console.log(`local run report: ${statSync(reportPath).size} bytes, rendered in ${opened.renderMs} ms; screenshots ${shot}, ${top}`);
    if (process.env['UPDATE_DOCS_SCREENSHOT'] === '1') copyFileSync(top, join(repoRoot, 'docs', 'report.png'));
    await opened.page.close();

    // `tasker report` writes the same report again, where asked.
    const out = join(ws.dir, 'again', 'run.html');
    const again = await runTasker(['report', '--workdir', ws.dir, '--out', out]);
    expect(again.exitCode, again.stderr).toBe(0);
    const [first, ...sizes] = again.stdout.split('\n');
    expect(first).toBe(`Report of run local-report (${results.length} attempts, ${Math.ceil(statSync(out).size / 1024)} KiB): ${out}`);
    // Then the pool sizes its results suggest (CPU only: no command ran long enough for a memory sample).
    expect(sizes.join('\n')).toContain('# pool "default", phase "simulate"');
    const reopened = await browser.open(out);
    await expectReportMatches(reopened, results, 'local slots');
    await reopened.page.close();
  });

  it('reads top-down at 1280 and at 390 px: failures first and one click from the count, logs as links, ISO times in UTC, nothing broken or wider than the screen', async () => {
    const ws = workspace();
    const result = await runTasker(['run', '-j', '3', '--run-id', 'layout', '--workdir', ws.dir, ...runFlags, jobsWithFailures(ws.dir)]);
    expect(result.exitCode, result.stderr).toBe(1);
    const reportPath = join(ws.dir, '.tasker', 'runs', 'layout', 'report.html');
    const failed = failedIds(readResults(ws.dir, 'layout'));
    for (const width of [1280, 390]) {
      const opened = await browser.open(reportPath, { width, height: 900 });
      const { page } = opened;
      const reading = await readPage(page);
      expect(opened.problems).toEqual([]);
      // Not wider than the screen: wide tables scroll inside their cards.
      expect(reading.scrollWidth, `page width at ${width} px`).toBeLessThanOrEqual(reading.innerWidth);
      // What failed comes first, and the failed count leads there in one click.
      expect(reading.headings[0]).toBe('Failures');
      await page.click('[data-testid="fact-failed"]');
      expect(await page.evaluate('location.hash')).toBe('#failures');
      const top = (await page.evaluate("document.getElementById('failures').getBoundingClientRect().top")) as number;
      expect(top).toBeGreaterThanOrEqual(0);
      expect(top).toBeLessThan(100);
      // Log paths are links to the logs, relative to the report (they open from file://).
      const failureLinks = await page.locator('[data-testid="failures"] a.log').evaluateAll((links) => links.map((link) => link.getAttribute('href')));
      expect(failureLinks).toHaveLength(failed.length);
      for (const href of failureLinks) expect(href).toMatch(/^logs\//);
      expect(reading.logHrefs.length).toBeGreaterThan(failed.length);
      for (const href of reading.logHrefs) expect(existsSync(fileURLToPath(href)), href).toBe(true);
      // ISO 8601 in UTC: the header's times and every time axis' labels, the date written once at least.
      expect(reading.times.length).toBeGreaterThanOrEqual(3);
      for (const time of reading.times) expect(time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      expect(reading.tickLabels.length).toBeGreaterThan(4);
      for (const label of reading.tickLabels) expect(label).toMatch(isoTickLabel);
      expect(reading.tickLabels.some((label) => /\d{4}-\d{2}-\d{2}/.test(label))).toBe(true);
      // Ids, commands and log paths on one line each, never broken inside a word.
      expect(reading.brokenTexts).toEqual([]);
      await page.evaluate('window.scrollTo(0, 0)');
      console.log(`report at ${width} px: ${reading.scrollWidth} px wide; screenshot ${await screenshot(page, `layout-${width}`)}`);
      await page.close();
    }
  });

  it('of a distributed run: the same checks, attempts on the workers', async () => {
    const { dir, env } = distributed;
    for (let i = 0; i < 2; i++) distributed.procs.push((await readyWorker(env, ['--workdir', dir, '--concurrency', '2'])).proc);
    distributed.runIds.push('dist-report');
    const tasker = spawnTasker(env, ['run', '--run-id', 'dist-report', '--workdir', dir, ...runFlags, jobsWithFailures(dir)]);
    distributed.procs.push(tasker);
    const done = await tasker;
    expect(done.exitCode, done.all).toBe(1);
    const reportPath = join(dir, '.tasker', 'runs', 'dist-report', 'report.html');
    expect(done.all).toContain(`Report:  ${reportPath}`);
    const results = readResults(dir, 'dist-report');
    expect(done.stdout).toContain('Succeeded after a retry (--retries): 1 command: f1-L8 (2 attempts)');
    const opened = await browser.open(reportPath);
    await expectReportMatches(opened, results, 'workers');
    const workers = await opened.page.locator('[data-testid="workers"] tbody tr td:first-child').allTextContents();
    expect(workers.sort()).toEqual([...new Set(results.map((r) => r.worker))].sort());
    expect(workers.filter((name) => !name.startsWith('tasker@'))).toHaveLength(2);
    console.log(`distributed run report: screenshot ${await screenshot(opened.page, 'distributed-run')}`);
    await opened.page.close();
  });

  it('is written from the start, its path printed then, and the open page takes newer numbers by itself until the run ends', async () => {
    const ws = workspace();
    // Two slots, eight commands of 1.5 s: about 6 s, the page polls report-data.js meanwhile.
    const jobs = ws.jobs('jobs.sh', `${Array.from({ length: 8 }, () => 'sleep 1.5').join('\n')}\n`);
    const reportPath = join(ws.dir, '.tasker', 'runs', 'live', 'report.html');
    const started = Date.now();
    const tasker = startTasker(['run', '-j', '2', '--run-id', 'live', '--workdir', ws.dir, jobs]);
    let early = '';
    tasker.stderr?.on('data', (chunk: Buffer) => (early += String(chunk)));
    try {
      await waitFor('the report of the run just started', () => existsSync(reportPath), 5000);
      const writtenAfterMs = Date.now() - started;
      // Not on a terminal: the log line of the start names it (on a terminal, a line `Live report: PATH`).
      const startLine = early.split('\n').find((line) => line.includes('"msg":"run started"'));
      expect(JSON.parse(startLine ?? '{}')).toMatchObject({ runId: 'live', report: reportPath });
      const opened = await browser.open(reportPath);
      const { page } = opened;
      await page.evaluate('window.notReloaded = true');
      expect(await page.textContent('[data-testid="state"]')).toBe('running');
      // While it runs: counts move, the phase is running (no barrier wait yet) and the running line ends at the commands running now.
      await page.waitForFunction(`${stateIs('running')} && Number(document.querySelector('[data-fact="done"]').textContent) > 0`, undefined, { timeout: 15_000 });
      const row = await page.locator('[data-testid="phases"] tbody tr td').allTextContents();
      expect([row[2], row[9]]).toEqual(['running', '–']);
      expect(Number(await page.getAttribute('[data-testid="running-chart"]', 'data-last-running'))).toBeGreaterThanOrEqual(1);
      expect(tasker.exitCode).toBeNull();
      // Then the end, still without a reload by the test: the final numbers, and no more polling.
      await page.waitForFunction(stateIs('succeeded'), undefined, { timeout: 30_000 });
      expect(await fact(opened, 'done')).toBe(8);
      expect(await page.getAttribute('body', 'data-live')).toBe('ended');
      expect(Number(await page.getAttribute('body', 'data-updates'))).toBeGreaterThanOrEqual(2);
      expect(await page.evaluate('window.notReloaded')).toBe(true);
      expect(opened.problems).toEqual([]);
      console.log(`live report: written ${writtenAfterMs} ms after the tasker started, updated ${await page.getAttribute('body', 'data-updates')} times in the page`);
      await page.close();
    } finally {
      const result = await tasker;
      expect(result.exitCode, String(result.stderr)).toBe(0);
    }
  });

  it('of a run of ten commands is a small page', async () => {
    const ws = workspace();
    const jobs = ws.jobs('jobs.sh', `${Array.from({ length: 10 }, (_, i) => `bash ev.sh 0.0${i}`).join('\n')}\n`);
    const result = await runTasker(['run', '-j', '4', '--run-id', 'ten', '--workdir', ws.dir, jobs]);
    expect(result.exitCode, result.stderr).toBe(0);
    const reportPath = join(ws.dir, '.tasker', 'runs', 'ten', 'report.html');
    const bytes = statSync(reportPath).size;
    const opened = await browser.open(reportPath);
    expect(opened.problems).toEqual([]);
    expect(await opened.page.textContent('[data-testid="no-failures"]')).toBe('No command failed.');
    console.log(`ten-command report: ${bytes} bytes (uPlot ~51 KB of it), rendered in ${opened.renderMs} ms; screenshot ${await screenshot(opened.page, 'ten-commands')}`);
    expect(bytes).toBeLessThan(150 * 1024);
    await opened.page.close();
    // A run that is not there: exit 2, naming the runs there are.
    const missing = await runTasker(['report', 'nope', '--workdir', ws.dir]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('no run "nope"');
    expect(missing.stderr).toContain('ten');
  });
});
