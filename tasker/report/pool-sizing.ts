import { formatBytes } from '../../shared/state/usage.js';
import type { PhaseResources } from './resource-stats.js';

/**
 * The size a pool's workers need (pure): per workers phase, `resources.requests` and `limits` for
 * the pool's Deployment, from what the phase's commands used. Memory: the 90th (request) and 99th
 * (limit; the largest below 100 commands) percentile of peak RSS plus 25% headroom, times the
 * commands a worker runs at once, plus the worker's own memory. CPU: CPU used per second of wall
 * (median for the request, 99th percentile for the limit) times the commands at once.
 */

export interface PoolSizing {
  phase: string;
  pool: string;
  /** Commands a worker runs at once (the records' `slots`). */
  slots: number;
  /** Attempts the memory and the CPU figures rest on. */
  basedOn: { memory: number; cpu: number };
  requests: { cpu?: string; memory?: string };
  limits: { cpu?: string; memory?: string };
  /** To paste under the worker container of the pool's Deployment. */
  yaml: string;
}

/** Added to each command's memory: what it may use beyond what was seen. */
export const memoryHeadroom = 1.25;
/** The worker itself (Node) and its bash runners, measured about 120 MiB: rounded up. */
export const workerOverheadBytes = 256 * 1024 ** 2;
const mi = 1024 ** 2;

/** Memory as Kubernetes reads it: MiB rounded up to 64 Mi, in Gi when whole. */
export function memoryQuantity(bytes: number): string {
  const mebibytes = Math.ceil(bytes / mi / 64) * 64;
  return mebibytes % 1024 === 0 ? `${mebibytes / 1024}Gi` : `${mebibytes}Mi`;
}

/** CPU as Kubernetes reads it: millicores rounded up to 100m (at least 100m), whole cores plain. */
export function cpuQuantity(cores: number): string {
  const milli = Math.max(100, Math.ceil((cores * 1000) / 100) * 100);
  return milli % 1000 === 0 ? `"${milli / 1000}"` : `${milli}m`;
}

export function sizePool(resources: PhaseResources, pool: string): PoolSizing | undefined {
  const slots = resources.slots ?? 1;
  const rss = resources.peakRssBytes;
  const rate = resources.cpuPerWall;
  if (rss === undefined && rate === undefined) return undefined;
  const sizing: PoolSizing = { phase: resources.phase, pool, slots, basedOn: { memory: rss?.n ?? 0, cpu: rate?.n ?? 0 }, requests: {}, limits: {}, yaml: '' };
  if (rss !== undefined) {
    const high = rss.n < 100 ? rss.max : rss.p99;
    sizing.requests.memory = memoryQuantity(rss.p90 * memoryHeadroom * slots + workerOverheadBytes);
    sizing.limits.memory = memoryQuantity(high * memoryHeadroom * slots + workerOverheadBytes);
  }
  if (rate !== undefined) {
    sizing.requests.cpu = cpuQuantity(rate.p50 * slots);
    sizing.limits.cpu = cpuQuantity(Math.max(rate.p99, rate.p50) * slots);
  }
  sizing.yaml = yamlOf(sizing, resources);
  return sizing;
}

function yamlOf(sizing: PoolSizing, resources: PhaseResources): string {
  const rss = resources.peakRssBytes;
  const memoryNote = rss === undefined ? 'memory not measured: every command ended within the 1 s sampling period' : `peak memory p90 ${formatBytes(rss.p90)}, p99 ${formatBytes(rss.p99)}, max ${formatBytes(rss.max)}`;
  const lines = [
    `# pool "${sizing.pool}", phase "${sizing.phase}": ${sizing.slots} command(s) at once per worker; memory from ${sizing.basedOn.memory} command(s), CPU from ${sizing.basedOn.cpu}`,
    `# ${memoryNote}`,
    'resources:',
  ];
  for (const part of ['requests', 'limits'] as const) {
    lines.push(`  ${part}:`);
    const values = sizing[part];
    if (values.cpu !== undefined) lines.push(`    cpu: ${values.cpu}`);
    if (values.memory !== undefined) lines.push(`    memory: ${values.memory}`);
  }
  return lines.join('\n');
}

export interface RunResources {
  phases: PhaseResources[];
  sizing: PoolSizing[];
}

/** The sizes of the workers phases measured, in the phases' order (`phases` as summary.json lists them). */
export function sizePools(measured: PhaseResources[], phases: readonly { name: string; runsOn: string; pool?: string | undefined }[]): RunResources {
  const sizing: PoolSizing[] = [];
  for (const phase of phases) {
    const resources = measured.find((entry) => entry.phase === phase.name);
    if (phase.runsOn === 'tasker' || resources === undefined) continue;
    const size = sizePool(resources, phase.pool ?? 'default');
    if (size !== undefined) sizing.push(size);
  }
  return { phases: measured, sizing };
}

/** The printed part of the summary: one YAML block per workers phase measured; none when nothing was. */
export function sizingLines(sizings: readonly PoolSizing[] | undefined): string[] {
  if (sizings === undefined || sizings.length === 0) return [];
  const out = ['', "Pool sizes to request on a cluster (paste under the pool's worker container in its Deployment):"];
  for (const sizing of sizings) out.push(...sizing.yaml.split('\n').map((line) => `  ${line}`));
  return out;
}
