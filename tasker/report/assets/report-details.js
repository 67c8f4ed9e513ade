// The rest of the HTML run report: work over time, the timeline per worker, durations, CPU and
// memory, and the workers. Each section takes the view ({ model, charts }) and returns its elements.
(function () {
  'use strict';

  const R = window.TaskerReport;
  const { el, num, dur, bytes, cores, clock, table, command, logLink } = R;

  function binTimes(bins) {
    const xs = new Array(bins.count);
    for (let i = 0; i < bins.count; i++) xs[i] = bins.fromMs + i * bins.binMs;
    return xs;
  }

  /**
   * The bins, and one more point at their end: "now" in a live report, where the running line
   * shows the commands running now (what the tasker counts) instead of falling to zero.
   */
  function activitySeries(model) {
    const { run, data } = model;
    const last = (values) => (values.length > 0 ? values[values.length - 1] : 0);
    const runningNow = R.isLive(run) && run.runningLabel === 'running' && run.runningNow !== undefined ? run.runningNow : last(data.running);
    return {
      xs: [...binTimes(data.bins), data.bins.toMs],
      running: [...data.running, runningNow],
      liveWorkers: [...data.liveWorkers, last(data.liveWorkers)],
      finished: [...data.finished, last(data.finished)],
      failed: [...data.failed, last(data.failed)],
    };
  }

  function activitySection({ model, charts }) {
    const { data } = model;
    const out = [el('h2', { text: 'Work over time' })];
    if (data.attempts === 0 && !R.isLive(model.run)) return [...out, el('p', { class: 'note', text: 'No command has finished yet.' })];
    const runningHere = model.run.runningLabel === 'running';
    const stillRunning = R.isLive(model.run) ? (runningHere ? ' Commands still running are drawn up to now.' : ' Commands running on workers appear once they finish.') : '';
    out.push(el('p', { class: 'note', text: `Time bins of ${dur(data.bins.binMs)}, times in UTC: commands running (average over each bin), workers with a command running, attempts finished and failed.${stillRunning} Drag to zoom, double-click to zoom out.` }));
    const running = el('div', { class: 'chart', 'data-testid': 'running-chart' });
    const finished = el('div', { class: 'chart', 'data-testid': 'finished-chart' });
    out.push(running, finished);
    const s = activitySeries(model);
    running.setAttribute('data-last-running', String(s.running[s.running.length - 1]));
    const stepped = uPlot.paths.stepped({ align: 1 });
    const line = (label, stroke, extra) => Object.assign({ label, stroke, width: 1.5, paths: stepped, points: { show: false } }, extra);
    const cursor = { sync: { key: uPlot.sync('activity').key } };
    const x = { label: 'time (UTC)', value: (_, v) => clock(v) };
    // A local run has no workers: its commands run on the tasker's own slots, one "worker" throughout.
    const local = model.run.mode === 'local';
    const axes = [{}, { label: 'running', size: 60 }, ...(local ? [] : [{ scale: 'w', side: 1, label: 'workers', grid: { show: false }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }])];
    const series = [x, line(local ? 'commands running on the local slots' : 'commands running', '#2f81f7', { fill: 'rgba(47,129,247,0.12)' }), ...(local ? [] : [line('live workers', '#8250df', { scale: 'w' })])];
    charts.later(() => {
      charts.plot(running, { height: 220, cursor, scales: { x: { time: true }, y: { range: (_, min, max) => [0, Math.max(1, max)] }, ...(local ? {} : { w: { range: (_, min, max) => [0, Math.max(1, max)] } }) }, axes, series }, local ? [s.xs, s.running] : [s.xs, s.running, s.liveWorkers]);
      charts.plot(finished, { height: 180, cursor, scales: { x: { time: true } }, axes: [{}, { label: 'per bin', size: 60 }], series: [x, line('attempts finished', '#1f883d'), line('attempts failed', '#cf222e')] }, [s.xs, s.finished, s.failed]);
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
    const lines = [`${row.worker} · ${clock(x)} · ${row.busy[col].toFixed(2)} busy slots`];
    if (sample !== undefined) lines.push(`${sample.id} (attempt ${sample.attempt}, ${sample.outcome}, ${dur(sample.durationMs)}, from ${clock(sample.startMs)})`, sample.command);
    return lines.join('\n');
  }

  function workerTimelineSection({ model, charts }) {
    const { data } = model;
    const tl = data.timeline;
    if (tl.rows.length === 0) return [];
    const out = [el('h2', { text: model.run.mode === 'local' ? 'Timeline of the local slots' : 'Timeline per worker' })];
    const hidden = tl.hiddenWorkers > 0 ? ` The ${tl.rows.length} busiest workers are shown; ${tl.hiddenWorkers} more are in the table below.` : '';
    const peak = Math.max(0.01, ...tl.rows.flatMap((r) => r.busy));
    out.push(el('p', { class: 'note' }, [`Columns of ${dur(tl.columnMs)}; colour: average busy slots (0`, el('span', { class: 'legend-scale' }), `${peak.toFixed(1)}). Hover a cell for the longest command that started there.${hidden}`]));
    const chart = el('div', { class: 'chart', 'data-testid': 'worker-chart' });
    out.push(chart);
    const fromMs = data.bins.fromMs;
    const samples = tl.rows.map((r) => new Map(r.samples));
    const tip = R.tooltipFor(chart);
    charts.later(() => {
      const u = charts.rowChart(chart, tl.rows.map((r) => r.worker), Math.min(900, 70 + 20 * tl.rows.length), (u) => {
        tl.rows.forEach((r, row) => {
          r.busy.forEach((b, col) => {
            if (b <= 0) return;
            const t = Math.min(1, 0.15 + 0.85 * (b / peak));
            R.rect(u, fromMs + col * tl.columnMs, fromMs + (col + 1) * tl.columnMs, row, `rgb(${Math.round(232 - 222 * t)},${Math.round(241 - 193 * t)},${Math.round(251 - 146 * t)})`, 0.86);
          });
        });
      }, [fromMs, data.bins.toMs]);
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

  function durationSection({ model, charts }) {
    const { data } = model;
    const out = [el('h2', { text: 'Durations per phase' })];
    for (const p of data.phases) {
      const d = p.durations;
      const block = el('div', { class: 'phase-block', 'data-phase': p.name });
      const quantiles = table([{ label: 'attempts', num: 1 }, { label: 'min', num: 1 }, { label: 'mean', num: 1 }, { label: 'p50', num: 1 }, { label: 'p90', num: 1 }, { label: 'p99', num: 1 }, { label: 'max', num: 1 }], [[num(d.count), dur(d.minMs), dur(d.meanMs), dur(d.p50Ms), dur(d.p90Ms), dur(d.p99Ms), dur(d.maxMs)]], 'quantiles');
      const slow = table([{ label: 'slowest', cls: 'id' }, { label: 'duration', num: 1 }, { label: 'outcome' }, { label: 'worker', cls: 'id' }, { label: 'log', cls: 'id' }, { label: 'command', cls: 'cmd' }], p.slowest.map((s) => [`${s.id}.${s.attempt}`, dur(s.durationMs), s.outcome, s.worker, logLink(s.log, model.run.links), command(s.command)]), 'slowest');
      const hist = el('div', { class: 'chart' });
      block.append(el('h3', { text: `Phase ${p.name}` }), el('div', { class: 'phase-grid' }, [el('div', {}, [quantiles, hist]), el('div', {}, [slow])]));
      out.push(block);
      if (p.histogram.length > 0) charts.later(() => charts.histogram(hist, p.histogram));
    }
    if (data.phases.length > 0) out.push(el('p', { class: 'note', text: 'Quantiles come from log-scale buckets: within 2.5 % of the exact value; min, mean and max are exact.' }));
    return out;
  }

  function distributionRow(label, d, format) {
    return d ? [label, format(d.p50), format(d.p90), format(d.p99), format(d.max), num(d.n)] : [label, '–', '–', '–', '–', '0'];
  }

  function topTable(label, valueLabel, list, format, testid, links) {
    return table([{ label, cls: 'id' }, { label: valueLabel, num: 1 }, { label: 'log', cls: 'id' }], list.map((t) => [`${t.id}.${t.attempt}`, format(t.value), logLink(t.log, links)]), testid);
  }

  function resourceBlock(r, links) {
    const block = el('div', { class: 'phase-block', 'data-phase': r.phase, 'data-testid': 'resources' });
    const heads = [{ label: 'measure' }, { label: 'p50', num: 1 }, { label: 'p90', num: 1 }, { label: 'p99', num: 1 }, { label: 'max', num: 1 }, { label: 'attempts', num: 1 }];
    const rows = [distributionRow('CPU time', r.cpuMs, dur), distributionRow('peak memory', r.peakRssBytes, bytes), distributionRow('CPU per second of wall', r.cpuPerWall, cores)];
    const tops = [topTable('most memory', 'peak', r.topMemory, bytes, 'top-memory', links), topTable('most CPU', 'CPU time', r.topCpu, dur, 'top-cpu', links)];
    block.append(el('h3', { text: `Phase ${r.phase}` }), el('div', { class: 'phase-grid' }, [el('div', {}, [table(heads, rows, 'resource-quantiles')]), el('div', {}, tops)]));
    if (r.oomKilled > 0) {
      const limit = r.memoryLimitBytes ? `; memory limit ${bytes(r.memoryLimitBytes)}` : '';
      block.append(el('p', { class: 'note', 'data-testid': 'oom-kills', text: `${num(r.oomKilled)} attempt(s) killed by the kernel's OOM killer${limit}` }), topTable('OOM-killed', 'last seen', r.oomKills, bytes, 'oom-killed', links));
    }
    return block;
  }

  function resourceSection({ model }) {
    const measured = (model.data.resources || []).filter((r) => r.cpuMs || r.peakRssBytes || r.oomKilled > 0);
    if (measured.length === 0) return [];
    const out = [el('h2', { text: 'CPU and memory per phase' }), ...measured.map((r) => resourceBlock(r, model.run.links))];
    if (model.sizing && model.sizing.length > 0) {
      out.push(el('h3', { text: "Pool sizes to request on a cluster (paste under the pool's worker container in its Deployment)" }), el('pre', { class: 'code', 'data-testid': 'sizing', text: model.sizing.map((s) => s.yaml).join('\n\n') }));
    }
    out.push(el('p', { class: 'note', text: "CPU time: user + system of each command and of the processes it waited for. Peak memory: the largest sum of the resident memory of the command's processes, sampled once a second (a command that ends sooner is not sampled); pages shared between them count once per process." }));
    return out;
  }

  function workerSection({ model }) {
    const { workers } = model.data;
    if (workers.length === 0) return [];
    const rows = workers.map((w) => [w.worker, num(w.attempts), num(w.succeeded), num(w.failed), dur(w.busyMs)]);
    // A local run's one "worker" is the tasker itself, running the commands on its local slots.
    const heading = model.run.mode === 'local' ? 'Where the commands ran (the tasker, on its local slots)' : `Workers (${workers.length})`;
    return [el('h2', { text: heading }), table([{ label: model.run.mode === 'local' ? 'tasker' : 'worker', cls: 'id' }, { label: 'attempts', num: 1 }, { label: 'succeeded', num: 1 }, { label: 'failed', num: 1 }, { label: 'busy time', num: 1 }], rows, 'workers')];
  }

  Object.assign(R, { activitySection, workerTimelineSection, durationSection, resourceSection, workerSection });
})();
