// The top of the HTML run report: the run's header and counts, the failures, the phases and the
// work over time. Each section takes the view ({ model, charts }) and returns its elements.
(function () {
  'use strict';

  const R = window.TaskerReport;
  const { el, num, dur, clock, table, fact, command, logLink } = R;

  function isLive(run) {
    return run.state === 'running';
  }

  function runLine(run) {
    return `workdir ${run.workdir}` + (run.files.length > 0 ? ` · jobs ${run.files.join(', ')}` : '') + (run.mode ? ` · ${run.mode === 'local' ? 'local run' : 'distributed run (RabbitMQ)'}` : '') +
      (run.priority && run.mode !== 'local' ? ` · priority ${run.priority}` : '') +
      (run.share ? ` · share ${Math.round(run.share.share * 100) / 100} of ${run.share.slots} slots at the last reading` : '');
  }

  /** The run's times, each kept on one line (a date must not break at its hyphens). */
  function timesLine(run) {
    const at = (iso) => el('span', { class: 'id', text: clock(Date.parse(iso)) });
    const parts = ['created ', at(run.createdAt)];
    if (run.sessionFinishedAt) parts.push(' · last session ', at(run.sessionStartedAt), ' → ', at(run.sessionFinishedAt));
    parts.push(' · report written ', at(run.generatedAt), ' (UTC)');
    return parts;
  }

  function header({ model }) {
    const { run, data } = model;
    const title = el('h1', {}, [`Run ${run.runId} `, el('span', { class: `badge ${run.state}`, 'data-testid': 'state', text: run.state })]);
    const out = [title, el('p', { class: 'note wrap', 'data-testid': 'run-line', text: runLine(run) }), el('p', { class: 'note', 'data-testid': 'times' }, timesLine(run))];
    if (isLive(run)) out.push(el('p', { class: 'note warning', 'data-testid': 'live-note', text: `Run in progress${run.runningNow !== undefined ? ` (${num(run.runningNow)} commands ${run.runningLabel || 'running'} when written)` : ''}: this page takes the tasker's newer numbers by itself every few seconds, until the run ends.` }));
    if (run.state === 'unfinished') out.push(el('p', { class: 'note warning', text: 'No summary after the last result: the run is still going, or its tasker was stopped.' }));
    if (data.skippedLines > 0) out.push(el('p', { class: 'note warning', text: `${num(data.skippedLines)} lines of results.jsonl were not result records (torn by a crash?) and are left out.` }));
    const f = data.failures;
    const facts = [
      fact('commands', num(run.commands), 'commands'),
      fact('done', num(run.done), 'done', 'good'),
      run.failed > 0 ? fact('failed: see below', num(run.failed), 'failed', 'bad', '#failures') : fact('failed', num(run.failed), 'failed'),
      run.skipped !== undefined ? fact('not run', num(run.skipped), 'not-run') : fact('not finished', num(run.notRun), 'not-run'),
      run.alreadyDone !== undefined ? fact('already done (earlier session)', num(run.alreadyDone), 'already-done') : undefined,
      run.interrupted > 0 ? fact('interrupted', num(run.interrupted), 'interrupted') : undefined,
      f.deadLettered > 0 ? fact('dead-lettered', num(f.deadLettered), 'dead-lettered', 'bad', '#failures') : undefined,
      fact('attempts', num(data.attempts), 'attempts'),
      f.succeededAfterRetry > 0 ? fact('succeeded after a retry: see below', num(f.succeededAfterRetry), 'retried-ok', undefined, '#retried') : undefined,
      fact(isLive(run) ? 'running for' : 'wall time', dur(run.wallMs), 'wall'),
      run.exitCode !== undefined ? fact('tasker exit code', String(run.exitCode), 'exit-code', run.exitCode === 0 ? 'good' : 'bad') : undefined,
    ];
    out.push(el('div', { class: 'facts' }, facts));
    if (run.resumeCommand) out.push(el('div', { class: 'resume' }, ['Resume with: ', el('code', { class: 'command', 'data-testid': 'resume', text: run.resumeCommand })]));
    return out;
  }

  function howEnded(f) {
    if (f.exitCode !== null && f.exitCode !== undefined) return `exit ${f.exitCode}`;
    if (f.signal) return `killed by ${f.signal}`;
    return f.outcome;
  }

  /** The commands a retry rescued: failed at first, succeeded on a later attempt. */
  function retriedPart(f) {
    if (f.succeededAfterRetry === 0) return [];
    const shown = f.retried.length < f.succeededAfterRetry ? ` (the first ${num(f.retried.length)} listed)` : '';
    return [
      el('h3', { id: 'retried', text: `Succeeded after a retry (${num(f.succeededAfterRetry)})` }),
      el('p', { class: 'note', text: `Failed at first, then succeeded on a later attempt${shown}.` }),
      table([{ label: 'command id', cls: 'id' }, { label: 'phase', cls: 'id' }, { label: 'succeeded on attempt', num: 1 }], f.retried.map((r) => [r.id, r.phase, num(r.attempt)]), 'retried'),
    ];
  }

  function failureSection({ model }) {
    const f = model.data.failures;
    const out = [el('h2', { id: 'failures', text: 'Failures' })];
    if (f.failed === 0) {
      out.push(el('p', { class: 'note', 'data-testid': 'no-failures', text: f.failedAttempts > 0 ? `No command failed for good; ${num(f.failedAttempts)} failed attempts were retried and succeeded.` : 'No command failed.' }));
      return [...out, ...retriedPart(f)];
    }
    const shown = f.rows.length < f.failed ? ` (the first ${num(f.rows.length)} listed)` : '';
    out.push(el('p', { class: 'note', 'data-testid': 'failure-count', text: `${num(f.failed)} ${f.failed === 1 ? 'command' : 'commands'} failed${shown}, in the order they first failed; ${num(f.failedAttempts)} failed ${f.failedAttempts === 1 ? 'attempt' : 'attempts'} in all. A log opens from its link.` }));
    const rows = f.rows.map((r) => {
      const marks = el('span', { class: 'id' }, [r.id, r.attempts > 1 ? el('span', { class: 'tag retried', text: `${r.attempts} attempts` }) : null, r.outcome === 'dead-lettered' ? el('span', { class: 'tag dead', text: 'dead-lettered' }) : null]);
      const tail = r.tail ? el('details', { 'data-key': `tail-${r.id}` }, [el('summary', { text: 'output' }), el('pre', { text: r.tail })]) : '';
      return [marks, r.phase, `${r.file}:${r.line}`, howEnded(r), r.reason || '', num(r.attempts), logLink(r.log, model.run.links), el('div', {}, [command(r.command), tail])];
    });
    const heads = [{ label: 'command id' }, { label: 'phase', cls: 'id' }, { label: 'file:line', cls: 'id' }, { label: 'ended', cls: 'id' }, { label: 'reason', cls: 'reason' }, { label: 'attempts', num: 1 }, { label: 'log', cls: 'id' }, { label: 'command and output tail', cls: 'cmd' }];
    out.push(table(heads, rows, 'failures'));
    return [...out, ...retriedPart(f)];
  }

  /** The phase running now (a live report), else undefined. */
  function runningPhaseOf(run) {
    return isLive(run) ? run.runningPhase : undefined;
  }

  function phaseRow(phase, seen, run, nowMs) {
    const running = runningPhaseOf(run) === phase.index;
    const ok = seen ? seen.outcomes.succeeded || 0 : 0;
    const failedAttempts = seen ? seen.attempts - ok - (seen.outcomes.interrupted || 0) : 0;
    const startMs = seen ? seen.firstStartMs : running ? run.runningPhaseStartedMs : undefined;
    const span = startMs === undefined ? undefined : (running ? nowMs : seen.lastFinishMs) - startMs;
    // A running phase has no barrier wait yet: its last command may not have started.
    const wait = seen && !running ? seen.lastFinishMs - seen.lastStartMs : undefined;
    const status = running ? 'running' : phase.status || (seen ? (seen.attempts > 0 && ok >= phase.commands ? 'done' : 'started') : isLive(run) ? 'waiting' : 'not run');
    const rate = span > 0 ? ok / (span / 1000) : undefined;
    return [phase.name, phase.runsOn, status, num(phase.commands), num(ok), num(failedAttempts), num(phase.skipped), dur(phase.durationMs !== undefined ? phase.durationMs : span), rate !== undefined ? `${rate.toFixed(rate < 10 ? 2 : 0)}/s` : '–', dur(wait)];
  }

  function phaseSection({ model, charts }) {
    const { run, phases, data } = model;
    const byIndex = new Map(data.phases.map((p) => [p.index, p]));
    const nowMs = data.bins.toMs;
    const rows = phases.map((phase) => phaseRow(phase, byIndex.get(phase.index), run, nowMs));
    const heads = [{ label: 'phase', cls: 'id' }, { label: 'runs on' }, { label: 'status' }, { label: 'commands', num: 1 }, { label: 'done', num: 1 }, { label: 'failed attempts', num: 1 }, { label: 'not run', num: 1 }, { label: 'duration', num: 1 }, { label: 'throughput', num: 1 }, { label: 'barrier wait', num: 1 }];
    const out = [el('h2', { text: 'Phases' }), table(heads, rows, 'phases')];
    const live = runningPhaseOf(run);
    const bars = phases.map((phase) => {
      const seen = byIndex.get(phase.index);
      if (phase.index === live) return { name: phase.name, fromMs: seen ? Math.min(seen.firstStartMs, run.runningPhaseStartedMs ?? seen.firstStartMs) : run.runningPhaseStartedMs, toMs: nowMs, running: true };
      return seen ? { name: phase.name, fromMs: seen.firstStartMs, lastStartMs: seen.lastStartMs, toMs: seen.lastFinishMs } : undefined;
    }).filter((bar) => bar !== undefined && bar.fromMs !== undefined);
    if (bars.length === 0) return out;
    out.push(el('p', { class: 'note', text: 'Each phase from its first start to its last finish; the pale end is its barrier wait: from the last command to start until the last one finished. A running phase reaches to now.' }));
    const chart = el('div', { class: 'chart', 'data-testid': 'phase-chart' });
    out.push(chart);
    const range = [Math.min(...bars.map((b) => b.fromMs)), Math.max(...bars.map((b) => b.toMs), Math.min(...bars.map((b) => b.fromMs)) + 1)];
    chart.setAttribute('data-bars', JSON.stringify(bars));
    charts.later(() => charts.rowChart(chart, bars.map((b) => b.name), 40 + 34 * bars.length, (u) => {
      bars.forEach((b, row) => {
        if (b.running) return R.rect(u, b.fromMs, b.toMs, row, '#0969da', 0.6);
        R.rect(u, b.fromMs, b.lastStartMs, row, '#2f81f7', 0.6);
        R.rect(u, b.lastStartMs, b.toMs, row, '#a5c8fa', 0.6);
      });
    }, range));
    return out;
  }

  Object.assign(R, { header, failureSection, phaseSection, isLive });
})();
