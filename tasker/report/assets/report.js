// The HTML run report's main script: builds the page from the JSON inlined next to it
// (tasker/report/report-model.ts describes it) with the sections of the other report scripts.
// While the run goes, it loads report-data.js (written by the tasker next to the page) every few
// seconds and draws the page again from it: a script element works from file://, where fetch()
// of a sibling file is refused. Everything it needs is in the page: no network access.
(function () {
  'use strict';

  const R = window.TaskerReport;
  const root = document.getElementById('report');
  let current;
  let updates = 0;

  /** What failed comes first when something failed; otherwise the failures' one line goes after the details. */
  function sections(model) {
    const failedFirst = model.data.failures.failed > 0;
    return [R.header, failedFirst ? R.failureSection : null, R.phaseSection, R.activitySection, R.workerTimelineSection, R.durationSection, R.resourceSection, failedFirst ? null : R.failureSection, R.workerSection].filter(Boolean);
  }

  /** Draws the page; drawn again from live data, it keeps the reader's scroll position and opened outputs. */
  function render(model) {
    const open = new Set([...root.querySelectorAll('details[open][data-key]')].map((d) => d.getAttribute('data-key')));
    const scroll = window.scrollY;
    root.style.minHeight = `${root.offsetHeight}px`;
    if (current !== undefined) current.charts.destroy();
    const view = { model, charts: R.createCharts(root) };
    const parts = [];
    for (const section of sections(model)) parts.push(...section(view));
    root.replaceChildren(...parts);
    for (const details of root.querySelectorAll('details[data-key]')) if (open.has(details.getAttribute('data-key'))) details.open = true;
    view.charts.drawPending();
    root.style.minHeight = '';
    if (current !== undefined) window.scrollTo(window.scrollX, scroll);
    current = view;
  }

  // ---- live updates ----------------------------------------------------------------------------

  /** About twice per rewrite of the tasker, between 1 and 15 s. */
  function pollMs(run) {
    return Math.min(15000, Math.max(1000, (run.nextWriteMs || 2000) / 2));
  }

  function schedule() {
    if (!R.isLive(current.model.run)) {
      document.body.setAttribute('data-live', 'ended');
      return;
    }
    document.body.setAttribute('data-live', 'polling');
    window.setTimeout(poll, pollMs(current.model.run));
  }

  function poll() {
    const script = document.createElement('script');
    // A new URL each time: never an old copy from a cache.
    script.src = `report-data.js?at=${Date.now()}`;
    script.onload = () => {
      script.remove();
      schedule();
    };
    script.onerror = () => {
      script.remove();
      document.body.setAttribute('data-live', 'failed');
      const note = document.querySelector('[data-testid="live-note"]');
      if (note) note.textContent = 'Run in progress, but report-data.js (next to this page, written by the tasker) cannot be read: this page no longer updates itself. Reload it for newer numbers.';
    };
    document.head.append(script);
  }

  /** Called by report-data.js. */
  window.taskerReportUpdate = (model) => {
    if (model.run.runId !== current.model.run.runId || model.run.generatedAt === current.model.run.generatedAt) return;
    updates++;
    document.body.setAttribute('data-updates', String(updates));
    render(model);
  };

  window.addEventListener('resize', () => current.charts.resize());

  render(JSON.parse(document.getElementById('report-data').textContent));
  // For the browser tests: when the page was complete, in ms since navigation started.
  document.body.setAttribute('data-render-ms', String(Math.round(performance.now())));
  document.body.setAttribute('data-rendered', 'true');
  schedule();
})();
