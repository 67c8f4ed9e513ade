import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExecutionResult } from '../../shared/exec/executor-contract.js';
import { parseResultLine, toResultRecord, type CommandRef, type ResultRecord } from '../../shared/state/results.js';
import { openResultsWriter, readPriorResults } from '../../tasker/run-state/results-file.js';

const command: CommandRef = { id: 'f1-L3', phase: 'simulate', phaseIndex: 2, command: 'python x.py', file: 'jobs.sh', line: 3 };

function result(overrides: Partial<ExecutionResult> = {}): ExecutionResult {
  return {
    outcome: 'succeeded',
    exitCode: 0,
    signal: null,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:01.500Z',
    durationMs: 1500,
    tail: 'last output\n',
    ...overrides,
  };
}

describe('toResultRecord', () => {
  it('copies the command and the result; no tail for a success', () => {
    const record = toResultRecord(command, 1, result(), 'tasker@host', 'logs/x.1.log');
    expect(record).toEqual<ResultRecord>({
      id: 'f1-L3',
      phase: 'simulate',
      phaseIndex: 2,
      command: 'python x.py',
      file: 'jobs.sh',
      line: 3,
      attempt: 1,
      outcome: 'succeeded',
      exitCode: 0,
      signal: null,
      startedAt: '2026-01-01T00:00:00.000Z',
      finishedAt: '2026-01-01T00:00:01.500Z',
      durationMs: 1500,
      worker: 'tasker@host',
      log: 'logs/x.1.log',
      cpuMs: null,
      peakRssBytes: null,
    });
  });

  it('keeps tail and reason of a failure', () => {
    const record = toResultRecord(command, 2, result({ outcome: 'failed', exitCode: 3, reason: 'exit code 3', tail: 'boom' }), 'w1', 'l');
    expect(record.tail).toBe('boom');
    expect(record.reason).toBe('exit code 3');
    expect(record.attempt).toBe(2);
    expect('tail' in toResultRecord(command, 1, result({ outcome: 'failed', exitCode: 1, tail: '' }), 'w', 'l')).toBe(false);
  });
});

describe('parseResultLine', () => {
  const record = toResultRecord(command, 1, result({ outcome: 'failed', exitCode: 1, tail: 'x' }), 'w', 'l');

  it('reads back a written record', () => {
    expect(parseResultLine(JSON.stringify(record))).toEqual(record);
    expect(parseResultLine(`${JSON.stringify(record)}\r`)).toEqual(record);
  });

  it('returns undefined for a line torn by a crash, at any length', () => {
    const line = JSON.stringify(record);
    for (let cut = 0; cut < line.length; cut++) {
      expect(parseResultLine(line.slice(0, cut)), `cut at ${cut}`).toBeUndefined();
    }
  });

  it.each(['', '   ', 'null', '42', '"text"', '[]', '{}', '{"id":"f1-L1","attempt":"1","outcome":"succeeded"}', '{"id":1,"attempt":1,"outcome":"succeeded"}', '{"id":"f1-L1","attempt":1}', 'not json'])(
    'returns undefined for the foreign line %j',
    (line) => {
      expect(parseResultLine(line)).toBeUndefined();
    },
  );
});

describe('openResultsWriter', () => {
  it('writes the records of one turn together, and resolves each append once its line is in the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'results-writer-'));
    const path = join(dir, 'results.jsonl');
    try {
      const writer = openResultsWriter(path);
      const first = writer.append(toResultRecord(command, 1, result(), 'w1', 'logs/a.log'));
      const second = writer.append(toResultRecord({ ...command, id: 'f1-L4' }, 1, result(), 'w1', 'logs/b.log'));
      expect(readFileSync(path, 'utf8')).toBe(''); // not before the turn ends
      await first;
      expect(readFileSync(path, 'utf8').split('\n')).toHaveLength(3);
      await second;
      void writer.append(toResultRecord({ ...command, id: 'f1-L5' }, 2, result({ outcome: 'failed', exitCode: 1 }), 'w1', 'logs/c.log'));
      writer.close(); // writes what is pending
      const prior = await readPriorResults(path);
      expect([...prior.succeeded]).toEqual(['f1-L3', 'f1-L4']);
      expect(prior.attempts.get('f1-L5')).toBe(2);
      await expect(writer.append(toResultRecord(command, 3, result(), 'w1', 'logs/d.log'))).rejects.toThrow(/closed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
