import { flagOrEnv, type ConfigProblems } from '../config/config-values.js';

/**
 * The health and metrics port and address, read by the tasker and the worker alike. Pure. Off
 * unless the port is set: a local `tasker run` opens no port; the Kubernetes manifests set it
 * (9090) for their probes. Unset, the address is every interface, as before (what a pod needs:
 * the kubelet's probes and Prometheus come from outside it); 127.0.0.1 keeps it to this machine.
 */

export const metricsEnvironment = {
  METRICS_PORT: {
    default: 'unset: no server',
    description: 'Port of an HTTP server with /healthz (readiness), /livez (liveness) and Prometheus /metrics; 0 picks a free port (logged). Same as --metrics-port.',
  },
  METRICS_HOST: {
    default: 'unset: every interface',
    description: 'Address the health and metrics server binds to, e.g. 127.0.0.1 (this machine only) or ::1; unset: every interface (what a Kubernetes pod needs for its probes). Same as --metrics-host.',
  },
} as const;

/** An IPv4 or IPv6 address, or a host name. */
const hostPattern = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

/** `--metrics-host` or METRICS_HOST; undefined when neither is set (every interface). */
export function readMetricsHost(flag: string | undefined, env: Record<string, string | undefined>, problems: ConfigProblems): string | undefined {
  const [name, text] = flagOrEnv('--metrics-host', flag, 'METRICS_HOST', env);
  if (text === undefined) return undefined;
  const host = text.trim();
  if (host.length > 253 || !hostPattern.test(host)) {
    problems.add(`${name} must be an address such as 127.0.0.1, ::1 or 0.0.0.0 (or a host name), got "${text}"`);
    return undefined;
  }
  return host;
}

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
