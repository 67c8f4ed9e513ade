/**
 * The HTML report's page: one self-contained file, its scripts, styles and data inlined, so it
 * opens from file://, a shared volume or S3 without any network access. Pure.
 */

export interface PageAssets {
  /** The charting library (uPlot) and its styles. */
  chartScript: string;
  chartStyles: string;
  /** The report's own browser script and styles (tasker/report/assets/). */
  script: string;
  styles: string;
}

/** Text inside <script> or <style> must not close its element early. */
function inlineSafe(text: string, tag: 'script' | 'style'): string {
  return text.replace(new RegExp(`</(${tag})`, 'gi'), '<\\/$1');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The data goes in as JSON inside a non-executed script element; `<` is escaped so that no
 * command text can end it, and the browser script reads it with JSON.parse.
 */
export function renderReportPage(title: string, data: unknown, assets: PageAssets): string {
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${inlineSafe(assets.chartStyles, 'style')}</style>
<style>${inlineSafe(assets.styles, 'style')}</style>
</head>
<body>
<noscript>This report draws its tables and charts with JavaScript; summary.json and results.jsonl hold the same numbers.</noscript>
<main id="report"></main>
<script type="application/json" id="report-data">${json}</script>
<script>${inlineSafe(assets.chartScript, 'script')}</script>
<script>${inlineSafe(assets.script, 'script')}</script>
</body>
</html>
`;
}

/** report-data.js: the model as a script that hands it to the open page (assets/report.js defines the function). */
export function renderReportData(data: unknown): string {
  return `window.taskerReportUpdate && window.taskerReportUpdate(${JSON.stringify(data)});\n`;
}
