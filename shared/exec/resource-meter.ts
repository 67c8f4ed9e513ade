import { oomReason } from '../state/usage.js';
import { findCgroupMemory, type CgroupMemory } from './cgroup-memory.js';
import type { ExecuteRequest, ResourceUsage } from './executor-contract.js';
import { groupResidentBytes, pageBytes } from './proc-memory.js';

/**
 * What each attempt used, for both executors: the peak resident memory of its process group,
 * sampled from /proc every `samplePeriodMs` once it has run that long (a shorter command costs a
 * Map entry, no /proc read), and whether the kernel's OOM killer ended it. CPU time comes from the
 * executor (the runner's `times`). How and with what error: docs/resources.md.
 */

export interface ResourceMeterOptions {
  /** Default: 1000 ms. */
  samplePeriodMs?: number;
  /** Every sample of a command (the worker keeps the last ones in Redis, for a worker that dies with it). */
  onSample?: (request: ExecuteRequest, rssBytes: number, limitBytes: number | undefined) => void;
  /** Default: this process's memory cgroup, found at creation; null: none. */
  cgroup?: CgroupMemory | null;
  /** Default: /proc. */
  procRoot?: string;
}

export interface AttemptMeter {
  /** The attempt ended: what it used, and the reason to give instead of the signal when the OOM killer ended it. */
  end(ending: { signal: string | null; killedOnPurpose: boolean; cpuMs: number | null }): { usage: ResourceUsage; reason?: string };
}

export interface ResourceMeter {
  /** Starts watching the process group `pgid` (its leader's pid). */
  begin(pgid: number, request: ExecuteRequest): AttemptMeter;
}

interface Watched {
  pgid: number;
  request: ExecuteRequest;
  lastSampleAtMs: number;
  peak: number | null;
  last: number | null;
}

/** A SIGKILL with the last sample this close to the limit reads as the OOM killer's, where the cgroup cannot tell. */
const nearLimit = 0.9;

export function createResourceMeter(options: ResourceMeterOptions = {}): ResourceMeter {
  const periodMs = options.samplePeriodMs ?? 1000;
  const procRoot = options.procRoot ?? '/proc';
  const cgroup = options.cgroup === undefined ? findCgroupMemory(procRoot) : options.cgroup ?? undefined;
  const limitBytes = cgroup?.limitBytes;
  let oomKillsSeen = cgroup?.oomKills();
  let bytesPerPage: number | undefined;
  const watched = new Set<Watched>();
  let timer: NodeJS.Timeout | undefined;

  const tick = (): void => {
    const now = Date.now();
    const due = [...watched].filter((entry) => now - entry.lastSampleAtMs >= periodMs);
    if (due.length === 0) return;
    bytesPerPage ??= pageBytes(procRoot);
    const sums = groupResidentBytes(new Set(due.map((entry) => entry.pgid)), bytesPerPage, procRoot);
    for (const entry of due) {
      const bytes = sums.get(entry.pgid);
      entry.lastSampleAtMs = now;
      if (bytes === undefined) continue; // ended between the listing and now
      entry.last = bytes;
      entry.peak = Math.max(entry.peak ?? 0, bytes);
      options.onSample?.(entry.request, bytes, limitBytes);
    }
  };

  /** Whether the cgroup counted an OOM kill not yet put down to an attempt; undefined: it cannot tell. */
  const cgroupOomKill = (): boolean | undefined => {
    const now = cgroup?.oomKills();
    if (now === undefined || oomKillsSeen === undefined) return undefined;
    if (now <= oomKillsSeen) return false;
    oomKillsSeen++; // one kill per attempt: two victims at once each find theirs
    return true;
  };

  return {
    begin(pgid, request) {
      const entry: Watched = { pgid, request, lastSampleAtMs: Date.now(), peak: null, last: null };
      watched.add(entry);
      // A quarter period: a command is first sampled between 1 and 1.25 periods after its start.
      timer ??= setInterval(tick, Math.max(10, periodMs / 4)).unref();
      return {
        end({ signal, killedOnPurpose, cpuMs }) {
          watched.delete(entry);
          if (watched.size === 0 && timer !== undefined) {
            clearInterval(timer);
            timer = undefined;
          }
          const usage: ResourceUsage = { cpuMs, peakRssBytes: entry.peak };
          if (limitBytes !== undefined) usage.memoryLimitBytes = limitBytes;
          if (signal !== 'SIGKILL' || killedOnPurpose) return { usage };
          const counted = cgroupOomKill();
          const last = entry.last;
          const byCgroup = counted === true;
          const bySample = counted === undefined && limitBytes !== undefined && last !== null && last >= nearLimit * limitBytes;
          if (!byCgroup && !bySample) return { usage };
          usage.oomKilled = true;
          return { usage, reason: oomReason(byCgroup ? 'cgroup' : 'sample', last, limitBytes) };
        },
      };
    },
  };
}
