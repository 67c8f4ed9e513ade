import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { PageAssets } from './report-page.js';

/**
 * The files inlined into every report: uPlot from node_modules (a production dependency, so it
 * is in the package and the image), and the report's own script and styles from ./assets/ next
 * to this module (the build copies tasker/report/assets to dist/tasker/report/assets).
 */

/** The report's scripts in the order they run: helpers, charts, sections, then the page itself. */
const ownScripts = ['report-base.js', 'report-charts.js', 'report-sections.js', 'report-details.js', 'report.js'];

let loaded: Promise<PageAssets> | undefined;

async function load(): Promise<PageAssets> {
  const require = createRequire(import.meta.url);
  const own = (name: string): Promise<string> => readFile(new URL(`./assets/${name}`, import.meta.url), 'utf8');
  const [chartScript, chartStyles, styles, ...scripts] = await Promise.all([
    readFile(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    own('report.css'),
    ...ownScripts.map(own),
  ]);
  return { chartScript, chartStyles, script: scripts.join('\n'), styles };
}

/** Read once per process; a failed read is tried again next time. */
export function reportAssets(): Promise<PageAssets> {
  loaded ??= load().catch((error: unknown) => {
    loaded = undefined;
    throw new Error(`cannot read the report's scripts: ${(error as Error).message}`, { cause: error });
  });
  return loaded;
}
