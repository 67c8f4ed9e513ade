import { defaultNamespace } from '../shared/config/names.js';
import { tlsEnvironment } from '../shared/config/tls-config.js';
import { metricsEnvironment } from '../shared/observe/metrics-config.js';
import { placementEnvironment } from '../shared/state/placement.js';
import { s3ConnectionEnvironment } from '../shared/storage/s3-config.js';

/** Environment variables the tasker reads, with their defaults (the README's table comes from here). */
export const taskerEnvironment = {
  WORKDIR: { default: 'the current directory', description: 'Directory commands run in, shared with the workers; same as --workdir.' },
  LOG_LEVEL: { default: 'info', description: 'pino log level: trace, debug, info, warn, error, fatal, silent.' },
  TASKER_PROGRESS_INTERVAL: { default: '5s', description: 'How often a progress line is logged when stderr is not a terminal; same as --progress-interval.' },
  TASKER_REPORT_INTERVAL: { default: '2s', description: "The shortest pause between two rewrites of report.html while a run goes (the first comes at the start); the pause grows with the run's age (a tenth of it, up to a minute) and is at least twenty times what the last rewrite took." },
  AMQP_URL: { default: 'unset: run locally', description: 'RabbitMQ to dispatch through; same as --amqp-url. When set, workers run the commands of workers phases.' },
  REDIS_URL: { default: 'redis://127.0.0.1:6379', description: 'Redis for run state in distributed mode; same as --redis-url.' },
  TASKER_NAMESPACE: { default: defaultNamespace, description: 'Prefix of queue names and Redis keys; the work queue is NAMESPACE.commands.' },
  TASKER_DELIVERY_LIMIT: { default: '10', description: 'Read by the workers: starts of a command attempt without a result before it is dead-lettered. The tasker only checks the value (the connection settings it shares with the workers).' },
  TASKER_MAX_IN_FLIGHT: { default: '10000', description: 'Commands published and not yet finished, at most (bounds memory and queue length).' },
  TASKER_BUNDLE_SIZE: { default: 'auto', description: 'Commands per work-queue message: auto (bundles while commands are short, one per message while they are long), or a fixed number; 1 turns bundling off. Same as --bundle-size.' },
  TASKER_PRIORITY: { default: 'normal', description: "Among the runs of a pool: high, normal or low. A waiting command of a higher priority starts before any of a lower one; runs of equal priority share the pool's worker slots. Same as --priority." },
  TASKER_STALL_WARNING: { default: '60s', description: 'Warn when no worker consumes, or nothing finished, for this long.' },
  TASKER_SIGNING_KEY: { default: 'unset: required with AMQP_URL unless TASKER_SIGNING=off', description: 'Secret shared with the workers (32+ characters); each command message is signed with HMAC-SHA256 for its destination, workers run only messages whose signature verifies, and only results signed with it are counted.' },
  TASKER_SIGNING: { default: 'on', description: 'off: run unsigned with AMQP_URL, without TASKER_SIGNING_KEY (a warning at start-up); the workers must have it off too.' },
  ...tlsEnvironment,
  TASKER_COMMAND_USER: { default: "unset: this process's own user", description: 'User (and group) the commands of local runs and tasker phases run as, USER or USER:GROUP (names or numbers); the tasker must be root or hold CAP_SETUID, CAP_SETGID and CAP_KILL. Keeps its secrets out of their reach.' },
  S3_BUCKET: { default: 'unset: no uploads', description: 'Bucket to upload outputs and the run record to; S3 is off unless it is set.' },
  S3_PREFIX: { default: 'the run id', description: 'Key prefix: objects are PREFIX/<path relative to the workdir>.' },
  S3_UPLOAD: { default: 'none', description: 'Comma-separated glob patterns, relative to the workdir, of the files a successful command created or changed to upload, e.g. output/**/metrics_*.json,output/figures/*.png.' },
  ...s3ConnectionEnvironment,
  ...metricsEnvironment,
  ...placementEnvironment,
} as const;

export type TaskerEnvName = keyof typeof taskerEnvironment;
