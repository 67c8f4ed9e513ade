import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

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
