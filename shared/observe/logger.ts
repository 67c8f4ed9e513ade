import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
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

/** Logs go to stderr: stdout is for results people and scripts read (plans, summaries). */
export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, name: options.name, redact: { paths: redactPaths, censor: '[redacted]' } };
  if (options.pretty) {
    return pino(base, pretty({ destination: 2, sync: true, ignore: 'pid,hostname,name', translateTime: 'HH:MM:ss', singleLine: true }));
  }
  return pino(base, pino.destination({ dest: 2, sync: true }));
}

/** The configuration's warnings, one line each, at start-up (loadConfig has no logger yet). */
export function logConfigWarnings(logger: Logger, warnings: readonly ConfigWarning[]): void {
  for (const { variable, host, message } of warnings) logger.warn({ variable, host }, message);
}
