import type { DemandSource, PoolDepth } from '../shared/observe/metrics-registry.js';
import type { Decision, Delivery } from '../shared/broker/amqp-session.js';
import type { CommandMessage } from '../shared/broker/messages.js';
import type { ExecutionResult } from '../shared/exec/executor-contract.js';
import type { Logger } from '../shared/observe/logger.js';
import type { RunStanding, RunStore } from '../shared/state/run-store.js';
import type { ResultRecord } from '../shared/state/results.js';
import type { Placement } from '../shared/state/placement.js';
import type { OutputSpec, OutputWatch } from '../shared/storage/outputs.js';

/**
 * Every type the worker's message pipeline (message/) is handed or returns: the outside world
 * (`MessagePorts`, built in service/message-ports.ts), the worker's own capacity (`Control`,
 * flow/attempt-control.ts) and the decisions. Declared here once, so nothing imports a type upward.
 */

export type { Decision, Settlement } from '../shared/broker/amqp-session.js';

/** What a message came with besides its body: its headers (the signature) and the routing key it was published with. */
export type Envelope = Pick<Delivery, 'headers' | 'routingKey'>;

/** How one attempt ended here: the decision its message should get, and the result to send the tasker (if any). */
export interface AttemptEnd {
  decision: Decision;
  record?: ResultRecord | undefined;
}

/** A command handed to the executor. */
export interface StartedCommand {
  result: Promise<ExecutionResult>;
  kill(reason: string): void;
  /** False while it waits for the executor's free runner (handed over early). */
  started(): boolean;
  /** Resolves true when the command starts, false when it ends without having started. */
  whenStarted: Promise<boolean>;
  /** Log path relative to the workdir. */
  log: string;
}

/** The Redis calls of one attempt (the Lua scripts of shared/redis/redis-command-state.ts). */
export type AttemptStore = Pick<RunStore, 'beginCommand' | 'recordStart' | 'finishCommand' | 'abandonCommand' | 'renewLease'> & Partial<Pick<RunStore, 'lastUsage'>>;

/** The workers' presence, to tell a dead lease holder from a live one (service/redis-presence.ts). */
export interface PresencePorts {
  /** Whether the worker's presence is up now. */
  workerPresent(workerId: string): Promise<boolean>;
  /** Since when this worker's own presence is up, without a break; undefined while it is not. */
  ownUpSinceMs(): number | undefined;
  nowMs(): number;
}

/** The outside world as the message pipeline sees it: Redis, the executor, the result queue, S3, the workdir. */
export interface MessagePorts {
  store: AttemptStore;
  /** Where this worker runs, recorded with each result; undefined: not recorded. */
  placement?: Placement | undefined;
  logger: Logger;
  workerId: string;
  /** A lease not renewed for this long is taken over (its worker is presumed dead). */
  leaseTtlMs: number;
  /** TASKER_DELIVERY_LIMIT: an attempt that started this often without a result is dead-lettered (poison). */
  startLimit: number;
  /** Absent: a lease holder is never known dead, a redelivered command waits out its lease. */
  presence?: PresencePorts | undefined;
  /**
   * Why a message is not to be run, undefined when it is: with TASKER_SIGNING_KEY, one not signed
   * as work for the routing key it came with; with signing off, one that carries a signature.
   * Unset (tests): all are run.
   */
  authenticate?: ((content: Buffer, envelope: Envelope) => string | undefined) | undefined;
  /**
   * Whether this worker sees the run's directory in its workdir (message/run-directory-check.ts);
   * false: said, and the message goes back to the queue, unrun. Unset: every run is taken as seen.
   */
  seesRun?: ((message: CommandMessage) => Promise<boolean>) | undefined;
  /** Whether the run goes on, asked of a run whose directory this worker cannot see. Unset: taken as live. */
  runStanding?: ((runId: string) => Promise<RunStanding>) | undefined;
  /** How long a message of a run not seen is held before it goes back (default 5 s). */
  unseenHoldMs?: ((runId: string) => number) | undefined;
  /** The attempt's log, relative to the workdir (where its earlier starts wrote). */
  logOf(message: CommandMessage): string;
  /** `beforeStart`: asked just before it starts (a runner free); false: it ends unstarted. */
  start(message: CommandMessage, beforeStart?: () => boolean | Promise<boolean>): StartedCommand;
  /** Snapshot before a command whose message asks for uploads; `finish()` uploads its outputs. */
  watchOutputs(spec: OutputSpec): Promise<OutputWatch>;
  /** Sends results to the tasker, in one message (a bundle's, or one command's). */
  publishResults(runId: string, records: readonly ResultRecord[]): Promise<void>;
  sleep(ms: number): Promise<void>;
}

/** The worker's own capacity as the message pipeline sees it: its command slots, running commands, the drain. */
export interface Control {
  /** True once the worker is shutting down: commands not started yet go back to the queue. */
  draining(): boolean;
  /**
   * Waits for one of the worker's `concurrency` command slots; resolves with its release, or
   * undefined when draining. `patient`: not handed back for waiting long (a bundle's attempts wait behind each other).
   * `message`: with no slot free now, undefined at once unless its phase is known here to be
   * short (it is not held ahead of running commands: an idle worker may run it now).
   */
  acquireSlot(patient?: boolean, message?: CommandMessage): Promise<(() => void) | undefined>;
  /** Registers a running command so shutdown can kill it; returns the unregister function. */
  track(command: StartedCommand, message: CommandMessage): () => void;
  /** Set by shutdown for commands it killed: they are requeued, not recorded. */
  killedForDrain(command: StartedCommand): boolean;
  /**
   * Waits until the caller's is the only command of this worker (no other starts meanwhile);
   * resolves with the release, or undefined when another command already waits to run alone or
   * the worker is draining.
   */
  runAlone(): Promise<(() => void) | undefined>;
  /** The message waits for another worker's lease: the worker takes one more message meanwhile; call the returned function when it stops. */
  waitingForLease(): () => void;
}

/**
 * For the attempts of a bundle: the lease is taken (with the siblings', in one round trip) before
 * a slot is waited for, and suspects take turns, so that one waiting to run alone never holds a
 * slot the one running alone waits for.
 */
export interface BundleTurns {
  /** Resolves when it is this suspect's turn; call the returned function when its turn ends. */
  suspectTurn(): Promise<() => void>;
}

/** What the worker reports for its metrics; the metrics server's recorder, or nothing. */
export interface WorkerMetrics {
  commandFinished(outcome: string, durationMs: number): void;
  messagePickedUp(lagMs: number): void;
  trackInFlight(read: () => number): void;
  /** Its pools' queues (ready messages, consumers), read from the broker at each scrape. */
  trackPools(read: () => Promise<readonly PoolDepth[]>): void;
  /** Its pools' demand from Redis: the pool and per-run gauges and `/demand`, between runs too. */
  trackDemand(source: DemandSource): void;
}
