/**
 * Who holds a command's lease, and when a worker waiting for that lease may take it over before
 * it expires: its holder's presence seen gone long enough. Pure: no clock, no Redis. Why
 * presence and not a heartbeat's age: docs/architecture.md, "A lease whose holder is gone".
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

/**
 * Default limits. 5 s: a live holder's client reconnects within a fraction of a second after a
 * reset. 12 s: longer than the Redis client's longest reconnect backoff (10 s), so that after a
 * Redis restart no worker judges the others before they all had the time to reconnect.
 */
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
