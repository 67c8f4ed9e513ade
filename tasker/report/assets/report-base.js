// The HTML run report's browser helpers: number, duration and time formats (ISO 8601, UTC), and
// DOM builders. The other report scripts share them through window.TaskerReport.
(function () {
  'use strict';

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

  /** ISO 8601 in UTC, to the second: 2026-07-12T00:15:30Z. */
  function clock(ms) {
    return ms === undefined || ms === null || !isFinite(ms) ? '–' : `${new Date(ms).toISOString().slice(0, 19)}Z`;
  }

  const dayMs = 86400000;

  /** A time axis tick in UTC, as precise as the ticks' spacing asks: 2026-07-12, 00:15, 00:15:30, 00:15:30.5. */
  function tickText(ms, incrMs) {
    const iso = new Date(ms).toISOString();
    if (incrMs >= dayMs) return iso.slice(0, 10);
    if (incrMs >= 60000) return iso.slice(11, 16);
    if (incrMs >= 1000) return iso.slice(11, 19);
    return iso.slice(11, incrMs >= 100 ? 21 : incrMs >= 10 ? 22 : 23);
  }

  /** Tick labels of a time axis; the first and each one on a new day carry the date below (ISO 8601, UTC). */
  function timeTicks(splits, incrMs) {
    let day;
    return splits.map((ms) => {
      if (ms === null || ms === undefined) return '';
      const text = tickText(ms, incrMs);
      const date = new Date(ms).toISOString().slice(0, 10);
      if (incrMs >= dayMs || date === day) return text;
      day = date;
      return `${text}\n${date}`;
    });
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

  /** A table in a box that scrolls sideways when it is wider than the page (a narrow screen). */
  function table(headers, rows, testid) {
    const head = el('tr', {}, headers.map((h) => el('th', { class: h.num ? 'num' : undefined, text: h.label })));
    const body = rows.map((cells) =>
      el('tr', {}, cells.map((cell, i) => {
        if (cell instanceof Node) return el('td', { class: headers[i].cls }, [cell]);
        return el('td', { class: headers[i].num ? 'num' : headers[i].cls, text: cell === undefined ? '' : String(cell) });
      })),
    );
    return el('div', { class: 'table-scroll' }, [el('table', { 'data-testid': testid }, [el('thead', {}, [head]), el('tbody', {}, body)])]);
  }

  /** A command as typed: one line that scrolls, never broken inside a word. */
  function command(text) {
    return el('code', { class: 'command', text });
  }

  /**
   * A log path (relative to the workdir) as a link that opens the log: relative to the report
   * when the log is under the report's directory (the run directory), else through the workdir.
   */
  function logLink(log, links) {
    if (!log) return '';
    const under = `${links.reportDir}/`;
    const relative = links.reportDir !== '' && log.startsWith(under) ? log.slice(under.length) : `${links.toWorkdir}/${log}`;
    const href = relative.split('/').map(encodeURIComponent).join('/');
    return el('a', { class: 'log', href, 'data-log': log, text: relative.startsWith('../') ? log : relative });
  }

  function fact(label, value, key, tone, href) {
    const body = [el('div', { class: 'value', 'data-fact': key, text: value }), el('div', { class: 'label', text: label })];
    if (href) return el('a', { class: `fact link ${tone || ''}`, href, 'data-testid': `fact-${key}` }, body);
    return el('div', { class: `fact ${tone || ''}` }, body);
  }

  window.TaskerReport = { num, dur, bytes, cores, clock, timeTicks, el, table, command, logLink, fact };
})();
