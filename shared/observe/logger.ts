import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type prettyFactory from 'pino-pretty';
import type { ConfigWarning } from '../config/urls.js';

export type { Logger };

/** Fields whose values never reach a log line (connection URLs carry passwords). */
export const redactPaths = [
  'amqpUrl',
  'redisUrl',
  'password',
  'secretAccessKey',
  'signingKey',
  '*.amqpUrl',
  '*.redisUrl',
  '*.password',
  '*.secretAccessKey',
  '*.signingKey',
  // TLS files as read (a client certificate's private key among them).
  'amqpTls',
  'redisTls',
  'caBundle',
  '*.amqpTls',
  '*.redisTls',
  '*.caBundle',
];

export interface LoggerOptions {
  level: string;
  /** Human-readable lines for a terminal; JSON lines otherwise (what log collectors want). */
  pretty: boolean;
  name: string;
}

/**
 * stderr, written synchronously. When it fails (its terminal closed: EIO; its reader gone: EPIPE)
 * the lines that follow are dropped: there is nowhere left to say anything, and an unhandled
 * 'error' would kill a program that is still stopping its commands and writing its records.
 */
function stderrDestination(): ReturnType<typeof pino.destination> {
  const destination = pino.destination({ dest: 2, sync: true });
  destination.on('error', () => {
    destination.write = () => true;
  });
  return destination;
}

/** Logs go to stderr: stdout is for results people and scripts read (plans, summaries). */
export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, name: options.name, redact: { paths: redactPaths, censor: '[redacted]' } };
  if (options.pretty) {
    // Loaded only for a terminal (15 ms of every start otherwise); it is CommonJS, so it loads synchronously.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof prettyFactory;
    return pino(base, pretty({ destination: stderrDestination(), ignore: 'pid,hostname,name', translateTime: 'HH:MM:ss', singleLine: true }));
  }
  return pino(base, stderrDestination());
}

/** The configuration's warnings, one line each, at start-up (loadConfig has no logger yet). */
export function logConfigWarnings(logger: Logger, warnings: readonly ConfigWarning[]): void {
  for (const { variable, host, message } of warnings) logger.warn({ variable, host }, message);
}
