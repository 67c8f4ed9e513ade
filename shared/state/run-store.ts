import type { ResultRecord } from './results.js';
import { defaultPool } from '../config/names.js';
import type { Priority, RunDemand } from './fair-share.js';
import type { UsageSample } from './usage.js';

/**
 * What tasker and workers keep about a run, and the store they keep it in. The contract only:
 * the Redis adapter (shared/redis/redis-store.ts) implements it.
 */

/** `interrupted`: stopped by its tasker (Ctrl-C, SIGTERM); its queued commands wait for a resume. */
export type RunState = 'running' | 'interrupted' | 'finished' | 'cancelled';

export interface RunMeta {
  runId: string;
  state: RunState;
  startedAt: string;
  heartbeatAt: string;
  host: string;
  workdir: string;
  phase: string;
  phaseIndex: number;
  phaseCount: number;
  /** The running phase's worker pool ('' for a tasker phase); absent from taskers older than pools. */
  pool?: string;
  /** The pools the run's workers phases use. */
  pools?: string[];
  /** What the tasker warns of now (no worker consumes the phase's pool); '' or absent: nothing. */
  warning?: string;
  total: number;
  done: number;
  failed: number;
  status?: string;
  /** --priority (absent: a tasker older than priorities, normal). */
  priority?: Priority;
  /** Commands published and not finished: queued or running (absent: a local run, or an older tasker). */
  inFlight?: number;
  /** The running phase's part of its pool's slots, and the pool's slots (fair-share.ts); absent: no worker phase running. */
  share?: number;
  slots?: number;
  /** Runs of the pool holding slots while this one has commands waiting ('' or absent: none). */
  waitsBehind?: string;
  /** The sha256 of the run's run.json as its first tasker wrote it (or an edited resume rewrote it); absent from taskers older than the check. */
  recordSha256?: string;
  /** An edited resume's next run.json, accepted as well until its tasker registers the run (a crash in between leaves either one valid). */
  pendingRecordSha256?: string;
}

/** A worker's heartbeat: the one record of what runs where (`tasker status` reads nothing else for it). */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  /** The pools whose queues it consumes; absent from a worker older than pools (default only). */
  pools?: string[];
  startedAt: string;
  running: { runId: string; id: string; attempt: number; since: string; command: string }[];
  /**
   * Its presence (worker/service/redis-presence.ts) is up. False: it lives without one (its presence connection
   * is down): its leases are not to be judged by its presence. Absent: a worker older than presence.
   */
  presence?: boolean;
  /** Its workdir, absolute, as it sees it; absent from a worker older than the run-directory check. */
  workdir?: string;
  /** Runs whose directory it cannot see in its workdir, so it hands their commands back (worker/message/run-directory-check.ts); absent: none. */
  unseenRuns?: string[];
}

/** The pools a worker serves, as its heartbeat says. */
export function poolsOfWorker(worker: Pick<WorkerInfo, 'pools'>): string[] {
  return worker.pools ?? [defaultPool];
}

export function servesPool(worker: Pick<WorkerInfo, 'pools'>, pool: string): boolean {
  return poolsOfWorker(worker).includes(pool);
}

/** Who or what cancelled a run (`tasker cancel`, or `tasker purge` of a run no tasker runs). */
export interface Cancellation {
  /** `--by`, else user@host of the canceller. */
  by: string;
  reason?: string;
  /** ISO timestamp. */
  at: string;
}

/** One attempt of one command. */
export interface AttemptKey {
  id: string;
  attempt: number;
}

/** A run as workers see it: `live` (registered, neither purged nor over), or why none of its commands runs. */
export type RunStanding = 'live' | 'cancelled' | 'unknown' | 'over';

/** What a worker may do with a delivered command, decided atomically in Redis. */
export type BeginOutcome =
  /** The run was cancelled (`tasker cancel`) or purged (`tasker purge`), 7 days: a replayed or leftover message, dead-lettered. */
  | { kind: 'cancelled' }
  /** Redis does not know the run (never registered, expired 7 days after its end, purged longer ago): dead-lettered. */
  | { kind: 'unknown' }
  /** The run is over (finished) and this attempt has no result: a replayed or leftover message, dead-lettered. */
  | { kind: 'over' }
  /** The run is stopped (interrupted): not run, and no longer published, so its resume publishes it again. */
  | { kind: 'stopped' }
  /**
   * A result for this attempt (or a success of any attempt) is already recorded: `record`, while
   * Redis still has it; absent once the tasker has it in results.jsonl (only its mark is left).
   */
  | { kind: 'finished'; record?: ResultRecord }
  /** Lease taken: run it. `priorStarts`: starts of this attempt without a result (a worker was lost while running it). */
  | { kind: 'started'; priorStarts?: number }
  /** Another live worker holds the lease: it is running this command right now. */
  | { kind: 'busy'; holder: string }
  /** This attempt started `startLimit` times and never got a result: it kills its workers. */
  | { kind: 'poison'; starts: CommandStarts };

/** The starts of one attempt without a result (each recorded by its worker before it ran). */
export interface CommandStarts {
  attempt: number;
  n: number;
  /** The workers that started it, oldest first (the last 20). */
  workers: string[];
  /** Starts given up for a known reason (drain deadline): not counted in `n`, kept for the record's `starts`. */
  handedBack?: number;
}

export interface RunStore {
  /**
   * One round trip: run purged (cancelled)? run unknown? already finished (a duplicate)? run over?
   * run stopped (then it is taken off the run's published attempts)? started `startLimit` times
   * without a result (poison; 0: no limit)? else take the lease. Nothing is written for a run
   * purged, unknown or over. `goneHolder`: a holder known dead (worker/message/lease-holder.ts), whose
   * lease is taken over if it still holds it.
   */
  beginCommand(runId: string, id: string, attempt: number, owner: string, ttlMs: number, startLimit: number, goneHolder?: string): Promise<BeginOutcome>;
  /**
   * Just before the command runs: if `owner` still holds the lease, renews it and counts a start
   * of this attempt by this worker, returning the starts so far (handed-back ones included); else -1 (do not run it).
   */
  recordStart(runId: string, id: string, attempt: number, worker: string, owner: string, ttlMs: number): Promise<number>;
  /** One round trip: record the result, clear the starts, release the caller's lease. A cancelled run's result is not recorded (only the lease is released). */
  finishCommand(runId: string, record: ResultRecord, owner: string): Promise<void>;
  /**
   * Gives a command up without a result (drain, hand-back): release the lease,
   * and with `started`, take its start back from the poison count (it ended for a known reason, not
   * by killing its worker), kept as handed back for the record's `starts`.
   */
  abandonCommand(runId: string, id: string, owner: string, started?: { attempt: number; worker: string }): Promise<void>;
  /** Latest recorded result of each command, for the ids given (missing ones are left out). */
  latestResults(runId: string, ids: readonly string[]): Promise<Map<string, ResultRecord>>;
  /**
   * Records the run as run by this tasker; a stopped run is no longer stopped (before its
   * published attempts are read), an over one no longer over (resumed).
   */
  registerRun(meta: RunMeta): Promise<void>;
  /** Marks the run over (it finished): workers dead-letter its leftover messages instead of running them. */
  endRun(runId: string): Promise<void>;
  /** Whether the run goes on ('live': registered, neither purged nor over), as the begin script judges it. */
  runStanding(runId: string): Promise<RunStanding>;
  /** Merges `fields` into the run's record in one step. */
  updateRun(runId: string, fields: Partial<RunMeta>): Promise<void>;
  /** Marks the run stopped: workers drop its queued commands, untouched, until it is registered again. */
  stopRun(runId: string): Promise<void>;
  getRun(runId: string): Promise<RunMeta | undefined>;
  latestRunIds(count: number): Promise<string[]>;
  /** Marks the run cancelled (for 7 days): workers start none of its commands any more, its tasker stops. */
  cancelRun(runId: string, cancellation: Cancellation): Promise<void>;
  /** Who cancelled the run, when it is; undefined when it is not. */
  cancellation(runId: string): Promise<Cancellation | undefined>;
  /** The attempts are in flight (one round trip for a bundle's). */
  markPublished(runId: string, attempts: readonly AttemptKey[]): Promise<void>;
  /**
   * The tasker has these attempts in results.jsonl: their records leave Redis (the marks that they
   * finished stay), and they are no longer in flight. One round trip for all of them.
   */
  forgetRecorded(runId: string, attempts: readonly AttemptKey[]): Promise<void>;
  publishedAttempts(runId: string): Promise<Map<string, number>>;
  /** These commands may succeed again: their succeeded marks go (an edited resume gave their ids to other commands). */
  clearSucceeded(runId: string, ids: readonly string[]): Promise<void>;
  /** Someone found the work queue deleted (its consumer cancelled, or missing when declaring): counts one loss of it. */
  noteQueueLost(queue: string): Promise<void>;
  /** How often the work queue was found deleted so far. */
  queueLosses(queue: string): Promise<number>;
  /** The run's tasker has dealt with this many losses of the queue (for a resumed tasker). */
  saveHandledQueueLosses(runId: string, queue: string, losses: number): Promise<void>;
  /** Per queue: the losses the run's tasker has dealt with. */
  handledQueueLosses(runId: string): Promise<Map<string, number>>;
  /** The ones of these commands that some worker runs now (their lease is held). */
  runningCommands(runId: string, ids: readonly string[]): Promise<Set<string>>;
  renewLease(runId: string, id: string, owner: string, ttlMs: number): Promise<boolean>;
  workerHeartbeat(info: WorkerInfo, ttlMs: number): Promise<void>;
  removeWorker(id: string): Promise<void>;
  workers(): Promise<WorkerInfo[]>;
  /**
   * Whether the worker lives as far as its presence tells (worker/service/redis-presence.ts): its presence is
   * subscribed (its process lives, or its connection was cut a moment ago), or its heartbeat says
   * it lives without one. False: its process ended, or its connection was cut and not back yet.
   */
  workerPresent(id: string): Promise<boolean>;
  /** Writes the run's entry in its pool's demand table; returns the pool's live entries (its own too), one round trip. */
  shareDemand(pool: string, entry: RunDemand): Promise<RunDemand[]>;
  /** Takes the run's entry out of the pool's demand table (its phase there ended, or the run did). */
  withdrawDemand(pool: string, runId: string): Promise<void>;
  /** The pool's live demand entries (`tasker status`, the metrics). */
  poolDemand(pool: string): Promise<RunDemand[]>;
  /** Calls `listener` when a run joins the pool's demand table; resolves to the unsubscribe. */
  onDemandJoined(pool: string, listener: () => void): Promise<() => Promise<void>>;
  /** The last memory samples of commands running on this worker, by command id. */
  noteUsage(runId: string, samples: ReadonlyMap<string, UsageSample>): Promise<void>;
  /** The last memory sample written for a command; undefined: none. */
  lastUsage(runId: string, id: string): Promise<UsageSample | undefined>;
  purgeRun(runId: string): Promise<number>;
  /** Lets a finished run's keys expire, so nothing piles up in Redis. */
  expireRun(runId: string, seconds: number): Promise<void>;
  close(): Promise<void>;
}
