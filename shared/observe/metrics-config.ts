import { flagOrEnv, type ConfigProblems } from '../config/config-values.js';

/**
 * The health and metrics port, read by the tasker and the worker alike. Pure. Off unless set:
 * a local `tasker run` opens no port; the Kubernetes manifests set it (9090) for their probes.
 */

export const metricsEnvironment = {
  METRICS_PORT: {
    default: 'unset: no server',
    description: 'Port of an HTTP server with /healthz (readiness), /livez (liveness) and Prometheus /metrics; 0 picks a free port (logged). Same as --metrics-port.',
  },
} as const;

/** `--metrics-port` or METRICS_PORT; undefined when neither is set. */
export function readMetricsPort(flag: string | undefined, env: Record<string, string | undefined>, problems: ConfigProblems): number | undefined {
  const [name, text] = flagOrEnv('--metrics-port', flag, 'METRICS_PORT', env);
  const port = problems.count(name, text, 0);
  if (port !== undefined && port > 65_535) {
    problems.add(`${name} must be a port number from 0 to 65535, got ${port}`);
    return undefined;
  }
  return port;
}
