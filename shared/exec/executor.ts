/**
 * Where the rest of the project imports the executor from: the contract every executor keeps
 * (executor-contract.ts), the spawn() executor (spawn-executor.ts) and the pieces both executors
 * share. The implementations import each other directly, never through this file, so that it
 * closes no import cycle.
 */
export {
  defaultKillGraceMs,
  defaultTailBytes,
  type ExecuteRequest,
  type ExecutionResult,
  type Executor,
  type CommandIdentity,
  type ExecutorOptions,
  type Outcome,
  type RunningCommand,
  type StartOptions,
} from './executor-contract.js';
export { logDirMaker, readTail, writeCommandScript } from './attempt-files.js';
export { outcomeOf, type Ending } from './attempt-outcome.js';
export { killGroup } from './process-group.js';
export { findShell } from './shell-lookup.js';
export { createExecutor } from './spawn-executor.js';
