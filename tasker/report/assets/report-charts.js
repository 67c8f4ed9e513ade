// The HTML run report's charts, drawn with uPlot: time axes in ISO 8601 UTC, rows of rectangles
// on a time axis (phases, workers), tooltips, duration histograms. Shared through window.TaskerReport.
(function () {
  'use strict';

  const { el, dur, timeTicks } = window.TaskerReport;
  const utc = (ts) => uPlot.tzDate(new Date(ts), 'Etc/UTC');

  /** Charts of one rendering of the page: destroyed together when live data replaces it. */
  function createCharts(root) {
    const charts = [];
    const pending = [];

    function chartWidth(container) {
      return Math.max(240, (container.clientWidth || root.clientWidth || 1000) - 4);
    }

    /** A time x axis labelled in ISO 8601 UTC; the labels drawn are kept on the container (data-x-ticks) for tests. */
    function timeAxis(container, axis) {
      return Object.assign({}, axis, {
        space: 90,
        values: (u, splits, _axis, _space, incr) => {
          const labels = timeTicks(splits, incr);
          container.setAttribute('data-x-ticks', JSON.stringify(labels));
          return labels;
        },
      });
    }

    function plot(container, opts, series) {
      const options = Object.assign({ width: chartWidth(container), ms: 1, tzDate: utc }, opts);
      if (options.scales && options.scales.x && options.scales.x.time) options.axes = [timeAxis(container, (options.axes || [])[0]), ...(options.axes || []).slice(1)];
      const chart = new uPlot(options, series, container);
      charts.push({ chart, container });
      return chart;
    }

    /** A chart whose rows (phases, workers) are drawn as rectangles on a time axis by `drawRows`. */
    function rowChart(container, labels, height, drawRows, timeRange) {
      const [fromMs, toMs] = timeRange;
      const labelPx = Math.min(240, Math.round(chartWidth(container) * 0.35), 16 + 8 * Math.max(4, ...labels.map((l) => l.length)));
      return plot(
        container,
        {
          height,
          legend: { show: false },
          cursor: { y: false, drag: { x: true, y: false } },
          scales: { x: { time: true, min: fromMs, max: toMs }, y: { auto: false, range: [-0.5, labels.length - 0.5], dir: -1 } },
          axes: [{}, { size: labelPx, splits: () => labels.map((_, i) => i), values: (_, ticks) => ticks.map((t) => labels[t] || ''), grid: { show: false } }],
          series: [{}, { paths: () => null, points: { show: false } }],
          hooks: { draw: [(u) => drawRows(u)] },
        },
        [[fromMs, toMs], [null, null]],
      );
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

    function resize() {
      for (const { chart, container } of charts) chart.setSize({ width: chartWidth(container), height: chart.height });
    }

    return {
      plot,
      rowChart,
      histogram,
      resize,
      // Charts need their containers in the page (for their width): drawn once the DOM is built.
      later: (draw) => pending.push(draw),
      drawPending() {
        for (const draw of pending.splice(0)) draw();
      },
      destroy() {
        for (const { chart } of charts.splice(0)) chart.destroy();
      },
    };
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
      tip.style.left = `${Math.max(0, Math.min(left + 14, container.clientWidth - 300))}px`;
      tip.style.top = `${top + 14}px`;
    };
  }

  Object.assign(window.TaskerReport, { createCharts, rect, tooltipFor });
})();
