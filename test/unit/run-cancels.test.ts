import { describe, expect, it } from 'vitest';
import type { CommandMessage } from '../../shared/broker/messages.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { Cancellation } from '../../shared/state/run-store.js';
import type { TrackedCommand } from '../../worker/flow/running-commands.js';
import { startRunCancels } from '../../worker/service/run-cancels.js';

/** A worker stops the commands it runs for a cancelled run, and only those. */

function tracked(runId: string, id: string, kills: string[]): TrackedCommand {
  const command = { kill: (reason: string) => kills.push(`${runId}/${id}: ${reason}`), started: () => true } as unknown as TrackedCommand['command'];
  return { command, message: { runId, id } as CommandMessage, sinceMs: 0 };
}

describe('startRunCancels', () => {
  it("kills the running commands of a cancelled run, and leaves the other runs' alone", async () => {
    const kills: string[] = [];
    const list = [tracked('gone', 'f1-L1', kills), tracked('live', 'f1-L1', kills), tracked('gone', 'f1-L2', kills)];
    const cancelled: Record<string, Cancellation> = { gone: { by: 'ops', at: '' } };
    const warnings: string[] = [];
    const logger = { warn: (_fields: unknown, message: string) => warnings.push(message), debug: () => undefined } as unknown as Logger;
    const watch = startRunCancels({ store: { cancellation: async (runId) => cancelled[runId] }, running: { list: () => list }, intervalMs: 5, logger });
    await new Promise((resolve) => setTimeout(resolve, 30));
    watch.stop();
    expect([...new Set(kills)]).toEqual(['gone/f1-L1: run cancelled by ops', 'gone/f1-L2: run cancelled by ops']);
    expect(warnings[0]).toBe('run cancelled: stopping its running commands');
  });
});
