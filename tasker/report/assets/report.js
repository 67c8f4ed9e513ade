// The HTML run report's browser script: builds the page from the JSON inlined next to it
// (tasker/report/report-model.ts describes it) and draws the charts with uPlot. Everything it
// needs is in the page: no network access. Times are shown in UTC.
(function () {
  'use strict';

  const model = JSON.parse(document.getElementById('report-data').textContent);
  const { run, phases, data } = model;
  const root = document.getElementById('report');
  const charts = [];

  // ---- formatting ----------------------------------------------------------------------------

  function num(n) {
    return n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US');
  }

  function dur(ms) {
    if (ms === undefined || ms === null || !isFinite(ms)) return '–';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  function bytes(n) {
    if (n === undefined || n === null) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return `${Number(value.toFixed(unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2))} ${units[unit]}`;
  }

  function cores(n) {
    return n === undefined || n === null ? '–' : `${n.toFixed(2)} cores`;
  }

  function clock(ms) {
    return ms === undefined || ms === null ? '–' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === 'text') node.textContent = value;
      else if (key === 'class') node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) if (child !== undefined && child !== null) node.append(child);
    return node;
  }

  function table(headers, rows, testid) {
    const head = el('tr', {}, headers.map((h) => el('th', { class: h.num ? 'num' : undefined, text: h.label })));
    const body = rows.map((cells) =>
      el('tr', {}, cells.map((cell, i) => {
        if (cell instanceof Node) return el('td', { class: headers[i].cls }, [cell]);
        return el('td', { class: headers[i].num ? 'num' : headers[i].cls, text: cell === undefined ? '' : String(cell) });
      })),
    );
    return el('table', { 'data-testid': testid }, [el('thead', {}, [head]), el('tbody', {}, body)]);
  }

  function fact(label, value, key, tone) {
    return el('div', { class: `fact ${tone || ''}` }, [el('div', { class: 'value', 'data-fact': key, text: value }), el('div', { class: 'label', text: label })]);
  }

  // ---- charts --------------------------------------------------------------------------------

  const utc = (ts) => uPlot.tzDate(new Date(ts), 'Etc/UTC');

  function chartWidth(container) {
    return Math.max(320, (container.clientWidth || root.clientWidth || 1000) - 4);
  }

  function plot(container, opts, series) {
    const chart = new uPlot(Object.assign({ width: chartWidth(container), ms: 1, tzDate: utc }, opts), series, container);
    charts.push({ chart, container });
    return chart;
  }

  window.addEventListener('resize', () => {
    for (const { chart, container } of charts) chart.setSize({ width: chartWidth(container), height: chart.height });
  });

  function binTimes() {
    const { fromMs, binMs, count } = data.bins;
    const xs = new Array(count);
    for (let i = 0; i < count; i++) xs[i] = fromMs + i * binMs;
    return xs;
  }

  /** A chart whose rows (phases, workers) are drawn as rectangles on a time axis by `drawRows`. */
  function rowChart(container, labels, height, drawRows, timeRange) {
    const [fromMs, toMs] = timeRange;
    return plot(
      container,
      {
        height,
        legend: { show: false },
        cursor: { y: false, drag: { x: true, y: false } },
        scales: { x: { time: true, min: fromMs, max: toMs }, y: { auto: false, range: [-0.5, labels.length - 0.5], dir: -1 } },
        axes: [
          {},
          { size: Math.min(240, 16 + 8 * Math.max(4, ...labels.map((l) => l.length))), splits: () => labels.map((_, i) => i), values: (_, ticks) => ticks.map((t) => labels[t] || ''), grid: { show: false } },
        ],
        series: [{}, { paths: () => null, points: { show: false } }],
        hooks: { draw: [(u) => drawRows(u)] },
      },
      [[fromMs, toMs], [null, null]],
    );
  }

  function rect(u, x0, x1, row, fill, share) {
    const left = u.valToPos(x0, 'x', true);
    const right = Math.max(left + 1, u.valToPos(x1, 'x', true));
    const rowPx = Math.abs(u.valToPos(0, 'y', true) - u.valToPos(1, 'y', true));
    const top = u.valToPos(row, 'y', true) - (rowPx * share) / 2;
    u.ctx.fillStyle = fill;
    u.ctx.fillRect(left, top, right - left, rowPx * share);
  }

  function tooltipFor(container) {
    const tip = el('div', { class: 'tooltip' });
    container.append(tip);
    return (text, left, top) => {
      if (text === undefined) {
        tip.style.display = 'none';
        return;
      }
      tip.textContent = text;
      tip.style.display = 'block';
      tip.style.left = `${Math.min(left + 14, container.clientWidth - 300)}px`;
      tip.style.top = `${top + 14}px`;
    };
  }

  // ---- sections ------------------------------------------------------------------------------

  function header() {
    const title = el('h1', {}, [`Run ${run.runId} `, el('span', { class: `badge ${run.state}`, 'data-testid': 'state', text: run.state })]);
    const lines = [
      `workdir ${run.workdir}` + (run.files.length > 0 ? ` · jobs ${run.files.join(', ')}` : '') + (run.mode ? ` · ${run.mode === 'local' ? 'local run' : 'distributed run (RabbitMQ)'}` : '') +
        (run.priority ? ` · priority ${run.priority}` : '') +
        (run.share ? ` · share ${Math.round(run.share.share * 100) / 100} of ${run.share.slots} slots at the last reading` : ''),
      `created ${clock(Date.parse(run.createdAt))} UTC` + (run.sessionFinishedAt ? ` · last session ${clock(Date.parse(run.sessionStartedAt))} → ${clock(Date.parse(run.sessionFinishedAt))} UTC` : '') + ` · report written ${clock(Date.parse(run.generatedAt))} UTC`,
    ];
    const out = [title, ...lines.map((text) => el('p', { class: 'note', text }))];
    if (run.state === 'running') out.push(el('p', { class: 'note warning', text: `Run in progress${run.runningNow !== undefined ? ` (${num(run.runningNow)} commands ${run.runningLabel || 'running'} when written)` : ''}: the tasker rewrites this file every so often; reload for newer numbers. Commands still running are not counted until they finish.` }));
    if (run.state === 'unfinished') out.push(el('p', { class: 'note warning', text: 'No summary after the last result: the run is still going, or its tasker was stopped.' }));
    if (data.skippedLines > 0) out.push(el('p', { class: 'note warning', text: `${num(data.skippedLines)} lines of results.jsonl were not result records (torn by a crash?) and are left out.` }));
    const f = data.failures;
    const facts = [
      fact('commands', num(run.commands), 'commands'),
      fact('done', num(run.done), 'done', 'good'),
      fact('failed', num(run.failed), 'failed', run.failed > 0 ? 'bad' : ''),
      run.skipped !== undefined ? fact('skipped', num(run.skipped), 'skipped') : fact('not finished', num(run.notRun), 'not-run'),
      run.alreadyDone !== undefined ? fact('already done (earlier session)', num(run.alreadyDone), 'already-done') : undefined,
      run.interrupted > 0 ? fact('interrupted', num(run.interrupted), 'interrupted') : undefined,
      f.deadLettered > 0 ? fact('dead-lettered', num(f.deadLettered), 'dead-lettered', 'bad') : undefined,
      fact('attempts', num(data.attempts), 'attempts'),
      f.succeededAfterRetry > 0 ? fact('succeeded after a retry', num(f.succeededAfterRetry), 'retried-ok') : undefined,
      fact(run.state === 'running' ? 'running for' : 'wall time', dur(run.wallMs), 'wall'),
      run.exitCode !== undefined ? fact('tasker exit code', String(run.exitCode), 'exit-code', run.exitCode === 0 ? 'good' : 'bad') : undefined,
    ];
    out.push(el('div', { class: 'facts' }, facts));
    if (run.resumeCommand) out.push(el('p', {}, ['Resume with: ', el('code', { 'data-testid': 'resume', text: run.resumeCommand })]));
    return out;
  }

  function phaseSection() {
    const byIndex = new Map(data.phases.map((p) => [p.index, p]));
    const rows = phases.map((phase) => {
      const seen = byIndex.get(phase.index);
      const ok = seen ? seen.outcomes.succeeded || 0 : 0;
      const failedAttempts = seen ? seen.attempts - ok - (seen.outcomes.interrupted || 0) : 0;
      const span = seen ? seen.lastFinishMs - seen.firstStartMs : undefined;
      const wait = seen ? seen.lastFinishMs - seen.lastStartMs : undefined;
      const status = phase.status || (seen ? (seen.attempts > 0 && ok >= phase.commands ? 'done' : 'started') : 'not started');
      return [phase.name, phase.runsOn, status, num(phase.commands), num(ok), num(failedAttempts), num(phase.skipped), dur(phase.durationMs !== undefined ? phase.durationMs : span), span > 0 ? `${(ok / (span / 1000)).toFixed(ok / (span / 1000) < 10 ? 2 : 0)}/s` : '–', dur(wait)];
    });
    const heads = [{ label: 'phase' }, { label: 'runs on' }, { label: 'status' }, { label: 'commands', num: 1 }, { label: 'done', num: 1 }, { label: 'failed attempts', num: 1 }, { label: 'skipped', num: 1 }, { label: 'duration', num: 1 }, { label: 'throughput', num: 1 }, { label: 'barrier wait', num: 1 }];
    const out = [el('h2', { text: 'Phases' }), table(heads, rows, 'phases')];
    const drawn = data.phases.filter((p) => p.firstStartMs !== undefined);
    if (drawn.length > 0 && data.firstStartMs !== undefined) {
      out.push(el('p', { class: 'note', text: 'Each phase from its first start to its last finish; the pale end is its barrier wait: from the last command to start until the last one finished.' }));
      const chart = el('div', { class: 'chart', 'data-testid': 'phase-chart' });
      out.push(chart);
      const labels = drawn.map((p) => p.name);
      const range = [data.firstStartMs, Math.max(data.lastFinishMs, data.firstStartMs + 1)];
      later(() => rowChart(chart, labels, 40 + 34 * labels.length, (u) => {
        drawn.forEach((p, row) => {
          rect(u, p.firstStartMs, p.lastStartMs, row, '#2f81f7', 0.6);
          rect(u, p.lastStartMs, p.lastFinishMs, row, '#a5c8fa', 0.6);
        });
      }, range));
    }
    return out;
  }

  function activitySection() {
    const out = [el('h2', { text: 'Work over time' })];
    if (data.attempts === 0) return [...out, el('p', { class: 'note', text: 'No command has finished yet.' })];
    out.push(el('p', { class: 'note', text: `Time bins of ${dur(data.bins.binMs)}: commands running (average over each bin), workers with a command running, attempts finished and failed. Drag to zoom, double-click to zoom out.` }));
    const running = el('div', { class: 'chart', 'data-testid': 'running-chart' });
    const finished = el('div', { class: 'chart', 'data-testid': 'finished-chart' });
    out.push(running, finished);
    const xs = binTimes();
    const stepped = uPlot.paths.stepped({ align: 1 });
    const line = (label, stroke, extra) => Object.assign({ label, stroke, width: 1.5, paths: stepped, points: { show: false } }, extra);
    const sync = uPlot.sync('activity');
    const cursor = { sync: { key: sync.key } };
    later(() => {
      plot(running, { height: 220, cursor, scales: { x: { time: true }, w: { range: (_, min, max) => [0, Math.max(1, max)] } }, axes: [{}, { label: 'running', size: 60 }, { scale: 'w', side: 1, label: 'workers', grid: { show: false }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }], series: [{ label: 'time (UTC)', value: (_, v) => clock(v) }, line('commands running', '#2f81f7', { fill: 'rgba(47,129,247,0.12)' }), line('live workers', '#8250df', { scale: 'w' })] }, [xs, data.running, data.liveWorkers]);
      plot(finished, { height: 180, cursor, scales: { x: { time: true } }, axes: [{}, { label: 'per bin', size: 60 }], series: [{ label: 'time (UTC)', value: (_, v) => clock(v) }, line('attempts finished', '#1f883d'), line('attempts failed', '#cf222e')] }, [xs, data.finished, data.failed]);
    });
    return out;
  }

  function workerTimelineSection() {
    const tl = data.timeline;
    if (tl.rows.length === 0) return [];
    const out = [el('h2', { text: 'Timeline per worker' })];
    const hidden = tl.hiddenWorkers > 0 ? ` The ${tl.rows.length} busiest workers are shown; ${tl.hiddenWorkers} more are in the table below.` : '';
    out.push(el('p', { class: 'note' }, [`Columns of ${dur(tl.columnMs)}; colour: average busy slots (0`, el('span', { class: 'legend-scale' }), `${Math.max(...tl.rows.flatMap((r) => r.busy)).toFixed(1)}). Hover a cell for the longest command that started there.${hidden}`]));
    const chart = el('div', { class: 'chart', 'data-testid': 'worker-chart' });
    out.push(chart);
    const labels = tl.rows.map((r) => r.worker);
    const peak = Math.max(0.01, ...tl.rows.flatMap((r) => r.busy));
    const fromMs = data.bins.fromMs;
    const toMs = fromMs + data.bins.count * data.bins.binMs;
    const samples = tl.rows.map((r) => new Map(r.samples));
    const tip = tooltipFor(chart);
    later(() => {
      const u = rowChart(chart, labels, Math.min(900, 70 + 20 * labels.length), (u) => {
        tl.rows.forEach((r, row) => {
          r.busy.forEach((b, col) => {
            if (b <= 0) return;
            const t = Math.min(1, 0.15 + 0.85 * (b / peak));
            rect(u, fromMs + col * tl.columnMs, fromMs + (col + 1) * tl.columnMs, row, `rgb(${Math.round(232 - 222 * t)},${Math.round(241 - 193 * t)},${Math.round(251 - 146 * t)})`, 0.86);
          });
        });
      }, [fromMs, toMs]);
      u.over.addEventListener('mousemove', (event) => {
        const x = u.posToVal(event.offsetX, 'x');
        const row = Math.round(u.posToVal(event.offsetY, 'y'));
        const col = Math.floor((x - fromMs) / tl.columnMs);
        if (row < 0 || row >= tl.rows.length || col < 0 || col >= tl.columns) return tip(undefined);
        tip(cellText(tl.rows[row], samples[row], col, x), event.offsetX + u.over.offsetLeft, event.offsetY + u.over.offsetTop);
      });
      u.over.addEventListener('mouseleave', () => tip(undefined));
    });
    return out;
  }

  /** What ran in a cell: the longest attempt that started there, else one still running from an earlier cell. */
  function cellText(row, samples, col, x) {
    let sample = samples.get(col);
    for (let c = col - 1; sample === undefined && c >= 0; c--) {
      const s = samples.get(c);
      if (s !== undefined && s.startMs + s.durationMs >= x) sample = s;
    }
    const lines = [`${row.worker} · ${clock(x)} UTC · ${row.busy[col].toFixed(2)} busy slots`];
    if (sample !== undefined) lines.push(`${sample.id} (attempt ${sample.attempt}, ${sample.outcome}, ${dur(sample.durationMs)}, from ${clock(sample.startMs)})`, sample.command);
    return lines.join('\n');
  }

  function durationSection() {
    const out = [el('h2', { text: 'Durations per phase' })];
    for (const p of data.phases) {
      const d = p.durations;
      const block = el('div', { class: 'phase-block', 'data-phase': p.name });
      const quantiles = table([{ label: 'attempts', num: 1 }, { label: 'min', num: 1 }, { label: 'mean', num: 1 }, { label: 'p50', num: 1 }, { label: 'p90', num: 1 }, { label: 'p99', num: 1 }, { label: 'max', num: 1 }], [[num(d.count), dur(d.minMs), dur(d.meanMs), dur(d.p50Ms), dur(d.p90Ms), dur(d.p99Ms), dur(d.maxMs)]], 'quantiles');
      const slow = table([{ label: 'slowest' }, { label: 'duration', num: 1 }, { label: 'outcome' }, { label: 'worker' }, { label: 'command', cls: 'cmd' }], p.slowest.map((s) => [`${s.id}.${s.attempt}`, dur(s.durationMs), s.outcome, s.worker, s.command]), 'slowest');
      const hist = el('div', { class: 'chart' });
      block.append(el('h3', { text: `Phase ${p.name}` }), el('div', { class: 'phase-grid' }, [el('div', {}, [quantiles, hist]), el('div', {}, [slow])]));
      out.push(block);
      if (p.histogram.length > 0) later(() => histogram(hist, p.histogram));
    }
    if (data.phases.length > 0) out.push(el('p', { class: 'note', text: 'Quantiles come from log-scale buckets: within 2.5 % of the exact value; min, mean and max are exact.' }));
    return out;
  }

  function histogram(container, bars) {
    const xs = bars.map((_, i) => i);
    const labels = bars.map((b) => `${dur(b.fromMs)}–${dur(b.toMs)}`);
    plot(container, {
      width: Math.min(640, chartWidth(container)),
      height: 170,
      scales: { x: { time: false, range: [-0.5, bars.length - 0.5] } },
      axes: [{ values: (_, ticks) => ticks.map((t) => (Number.isInteger(t) && bars[t] ? dur(bars[t].toMs) : '')), space: 60 }, { size: 50 }],
      series: [{ label: 'duration', value: (_, i) => (i === null || labels[i] === undefined ? '' : labels[i]) }, { label: 'attempts', fill: 'rgba(47,129,247,0.5)', stroke: '#2f81f7', paths: uPlot.paths.bars({ size: [0.9, 60] }), points: { show: false } }],
    }, [xs, bars.map((b) => b.count)]);
  }

  function howEnded(f) {
    if (f.exitCode !== null && f.exitCode !== undefined) return `exit ${f.exitCode}`;
    if (f.signal) return `killed by ${f.signal}`;
    return f.outcome;
  }

  function failureSection() {
    const f = data.failures;
    const out = [el('h2', { text: 'Failures' })];
    if (f.failed === 0) {
      out.push(el('p', { class: 'note', 'data-testid': 'no-failures', text: f.failedAttempts > 0 ? `No command failed for good; ${num(f.failedAttempts)} failed attempts were retried and succeeded.` : 'No command failed.' }));
      return out;
    }
    const shown = f.rows.length < f.failed ? ` (the first ${num(f.rows.length)} listed)` : '';
    out.push(el('p', { class: 'note', 'data-testid': 'failure-count', text: `${num(f.failed)} commands failed${shown}; ${num(f.failedAttempts)} failed attempts in all. Logs are relative to the workdir.` }));
    const rows = f.rows.map((r) => {
      const marks = el('span', {}, [r.id, r.attempts > 1 ? el('span', { class: 'tag retried', text: `${r.attempts} attempts` }) : null, r.outcome === 'dead-lettered' ? el('span', { class: 'tag dead', text: 'dead-lettered' }) : null]);
      const tail = r.tail ? el('details', {}, [el('summary', { text: 'output' }), el('pre', { text: r.tail })]) : '';
      return [marks, r.phase, `${r.file}:${r.line}`, howEnded(r), r.reason || '', num(r.attempts), r.log, el('div', {}, [el('code', { text: r.command }), tail])];
    });
    out.push(table([{ label: 'command id' }, { label: 'phase' }, { label: 'file:line' }, { label: 'ended' }, { label: 'reason' }, { label: 'attempts', num: 1 }, { label: 'log', cls: 'cmd' }, { label: 'command and output tail', cls: 'cmd' }], rows, 'failures'));
    return out;
  }

  function distributionRow(label, d, format) {
    return d ? [label, format(d.p50), format(d.p90), format(d.p99), format(d.max), num(d.n)] : [label, '–', '–', '–', '–', '0'];
  }

  function topTable(label, valueLabel, list, format, testid) {
    return table([{ label }, { label: valueLabel, num: 1 }, { label: 'log', cls: 'cmd' }], list.map((t) => [`${t.id}.${t.attempt}`, format(t.value), t.log]), testid);
  }

  function resourceBlock(r) {
    const block = el('div', { class: 'phase-block', 'data-phase': r.phase, 'data-testid': 'resources' });
    const heads = [{ label: 'measure' }, { label: 'p50', num: 1 }, { label: 'p90', num: 1 }, { label: 'p99', num: 1 }, { label: 'max', num: 1 }, { label: 'attempts', num: 1 }];
    const rows = [distributionRow('CPU time', r.cpuMs, dur), distributionRow('peak memory', r.peakRssBytes, bytes), distributionRow('CPU per second of wall', r.cpuPerWall, cores)];
    const tops = [topTable('most memory', 'peak', r.topMemory, bytes, 'top-memory'), topTable('most CPU', 'CPU time', r.topCpu, dur, 'top-cpu')];
    block.append(el('h3', { text: `Phase ${r.phase}` }), el('div', { class: 'phase-grid' }, [el('div', {}, [table(heads, rows, 'resource-quantiles')]), el('div', {}, tops)]));
    if (r.oomKilled > 0) {
      const limit = r.memoryLimitBytes ? `; memory limit ${bytes(r.memoryLimitBytes)}` : '';
      block.append(el('p', { class: 'note', 'data-testid': 'oom-kills', text: `${num(r.oomKilled)} attempt(s) killed by the kernel's OOM killer${limit}` }), topTable('OOM-killed', 'last seen', r.oomKills, bytes, 'oom-killed'));
    }
    return block;
  }

  function resourceSection() {
    const measured = (data.resources || []).filter((r) => r.cpuMs || r.peakRssBytes || r.oomKilled > 0);
    if (measured.length === 0) return [];
    const out = [el('h2', { text: 'CPU and memory per phase' }), ...measured.map(resourceBlock)];
    if (model.sizing && model.sizing.length > 0) {
      out.push(el('h3', { text: "Pool sizes to request (paste under the pool's worker container in its Deployment)" }), el('pre', { 'data-testid': 'sizing', text: model.sizing.map((s) => s.yaml).join('\n\n') }));
    }
    out.push(el('p', { class: 'note', text: "CPU time: user + system of each command and of the processes it waited for. Peak memory: the largest sum of the resident memory of the command's processes, sampled once a second (a command that ends sooner is not sampled); pages shared between them count once per process." }));
    return out;
  }

  function workerSection() {
    if (data.workers.length === 0) return [];
    const rows = data.workers.map((w) => [w.worker, num(w.attempts), num(w.succeeded), num(w.failed), dur(w.busyMs)]);
    return [el('h2', { text: `Workers (${data.workers.length})` }), table([{ label: 'worker' }, { label: 'attempts', num: 1 }, { label: 'succeeded', num: 1 }, { label: 'failed', num: 1 }, { label: 'busy time', num: 1 }], rows, 'workers')];
  }

  // Charts need their containers in the page (for their width): drawn once the DOM is built.
  const pending = [];
  function later(draw) {
    pending.push(draw);
  }

  for (const part of [header(), phaseSection(), activitySection(), workerTimelineSection(), durationSection(), resourceSection(), failureSection(), workerSection()]) root.append(...part);
  for (const draw of pending) draw();
  // For the browser tests: when the page was complete, in ms since navigation started.
  document.body.setAttribute('data-render-ms', String(Math.round(performance.now())));
  document.body.setAttribute('data-rendered', 'true');
})();
