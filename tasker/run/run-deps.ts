import type { Executor } from '../../shared/exec/executor-contract.js';
import type { Placement } from '../../shared/state/placement.js';
import type { Logger } from '../../shared/observe/logger.js';
import type { OutputSpec } from '../../shared/storage/outputs.js';
import type { DemandSource, PoolDepth } from '../../shared/observe/metrics-registry.js';
import type { S3Store } from '../../shared/storage/s3-store.js';

/** What `tasker run` is handed by its composition root, and the S3 outputs it opens when S3 is on. */

export interface RunDeps {
  logger: Logger;
  executor: Executor;
  /** The environment commands run with (the executor's): the shell's syntax check uses it too. */
  commandEnv: Record<string, string | undefined>;
  /** Where the summary is printed. */
  writeOut: (text: string) => void;
  /** stderr when it is a terminal (live progress bar), else undefined. */
  terminal: NodeJS.WriteStream | undefined;
  /** The user's current directory (for the resume hint). */
  cwd: string;
  /** How the user started the tasker, e.g. `npx tasker` (the resume hint starts with it). */
  invocation: string;
  signal: AbortSignal;
  now: () => number;
  /** Where this tasker runs, recorded with the attempts it runs itself (its slots are set per phase). Default: none recorded. */
  placement?: Placement;
  /** Counts finished attempts and reads the in-flight count, when a metrics server runs. */
  metrics?: RunMetrics;
  /** Called once, when the checks are over and the workdir is about to change. Until then nothing needs stopping. */
  onPrepared?: () => void;
  /** With commands under another user: checks (and protects) the workdir's run records once it exists; `created`: by this run. Default: none. */
  guardWorkdir?: (workdir: string, created: boolean) => Promise<void>;
}

/** What a run reports for its metrics (a narrow port of the metrics server). */
export interface RunMetrics {
  commandFinished(outcome: string, durationMs: number): void;
  trackInFlight(read: () => number): void;
  /** Per-pool queue gauges (distributed runs). */
  trackPools(read: () => Promise<readonly PoolDepth[]>): void;
  /** The pools' demand gauges and `/demand` (distributed runs: its pools, read from Redis). */
  trackDemand(source: DemandSource): void;
}

/** Where a run's outputs go when S3 is on: the store and what to upload where. */
export interface RunOutputs {
  store: S3Store;
  spec: OutputSpec;
}
