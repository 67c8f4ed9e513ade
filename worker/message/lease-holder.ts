/**
 * Who holds a command's lease, and when a worker waiting for that lease may take it over before
 * it expires. Pure: no clock, no Redis.
 *
 * Why not wait for the lease to expire: a worker that is redelivered a dead worker's message
 * would wait TASKER_LEASE_TTL (30 s by default) for each of its commands. Why not take over when
 * the holder's heartbeat is stale: silence cannot tell a dead worker from a frozen one (SIGSTOP,
 * a long GC or VM pause, a saturated node), and a frozen worker's running command must not be
 * started a second time; that is what the lease TTL bounds, and a shorter silence would only be
 * a shorter TTL. So the signal is one that the operating system gives when a process ends and
 * not while it is frozen: each worker keeps a Redis connection subscribed to a channel of its
 * own (its presence, redis-presence.ts); the kernel closes it when the process dies (SIGKILL,
 * OOM, crash), at once, and keeps it open while the process is stopped. A worker whose presence
 * is gone is known dead. What is left to guard against is a live worker whose connection was
 * reset (a Redis restart, a network reset) and has not reconnected yet:
 * - the holder must be seen absent on every look for `graceMs` (its client reconnects within a
 *   fraction of a second after a reset when Redis is reachable);
 * - the looking worker's own presence must have been up for `settleMs`, longer than the Redis
 *   client's longest reconnect backoff (10 s): after a Redis restart every worker reconnects at
 *   its own pace, and none judges the others before they all had the time to.
 * A machine that vanishes without closing its connections (power loss, partition) stays
 * "present" until Redis' TCP keepalive gives up: its commands wait for the lease TTL, as before.
 */

/** Lease values of a worker that announced its presence end so; older workers' do not. */
const presenceMark = '+presence';

/**
 * The lease value of the `n`th lease of a worker: `WORKER#N`, and `WORKER#N+presence` when the
 * worker's presence is announced (only such a holder may be judged gone by its presence: an older
 * worker, or one whose subscription failed, announces none and its leases expire as before).
 */
export function leaseOwner(workerId: string, n: number, presenceAnnounced: boolean): string {
  return `${workerId}#${n}${presenceAnnounced ? presenceMark : ''}`;
}

/** The worker whose presence tells whether the holder of a lease is alive; undefined when it announces none. */
export function presenceOf(holder: string): string | undefined {
  if (!holder.endsWith(presenceMark)) return undefined;
  const match = /^(.+)#\d+$/.exec(holder.slice(0, -presenceMark.length));
  return match?.[1];
}

export interface GoneLimits {
  /** The holder must be seen absent this long, on every look. */
  graceMs: number;
  /** The looking worker's own presence must have been up this long. */
  settleMs: number;
}

/** Default limits: see the header comment. */
export const goneLimits: GoneLimits = { graceMs: 5000, settleMs: 12_000 };

/** One look at a holder's presence. */
export interface HolderLook {
  holder: string;
  /** Its worker's presence is there; undefined: it announces none, or Redis could not say. */
  present: boolean | undefined;
  nowMs: number;
  /** Since when the looking worker's own presence is up, continuously; undefined while it is not. */
  ownUpSinceMs: number | undefined;
}

/** What the looks at one waiting command's holder found so far. */
export interface HolderAbsence {
  holder: string;
  /** Seen absent on every look since then; undefined: seen present (or could not tell) last time. */
  absentSinceMs: number | undefined;
  /** Known gone: take its lease over. */
  gone: boolean;
}

/** Folds one more look into what was found so far (undefined: the first look). */
export function judgeHolder(previous: HolderAbsence | undefined, look: HolderLook, limits: GoneLimits = goneLimits): HolderAbsence {
  const { holder, present, nowMs, ownUpSinceMs } = look;
  if (present !== false) return { holder, absentSinceMs: undefined, gone: false };
  // A new holder (the lease changed hands meanwhile) starts a new count.
  const absentSinceMs = previous?.holder === holder && previous.absentSinceMs !== undefined ? previous.absentSinceMs : nowMs;
  const settled = ownUpSinceMs !== undefined && nowMs - ownUpSinceMs >= limits.settleMs;
  return { holder, absentSinceMs, gone: settled && nowMs - absentSinceMs >= limits.graceMs };
}
