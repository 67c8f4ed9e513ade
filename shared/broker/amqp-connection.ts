import amqp, { type ChannelModel, type RecoveringChannelModel } from 'amqplib';
import { errorMessage, InputError } from '../errors.js';
import type { Logger } from '../observe/logger.js';
import { redactUrl, usesTls } from '../config/urls.js';
import { describeTlsFailure, type TlsFiles } from '../config/tls-config.js';

/**
 * A session's connection: amqplib's recovery reconnects by itself (jittered exponential backoff);
 * around it, this runs the session's hooks on every (re)connect and disconnect, tells waiters when
 * the connection is back, logs the first failure of an outage only, and turns a start-up failure
 * into a sentence the user can act on.
 */

/** How long a connection attempt may wait for the broker's AMQP handshake (or the TCP connect). */
const handshakeTimeoutMs = 5000;

// amqplib's wording for a server that is not RabbitMQ, or not its AMQP port.
const notAmqp = /Frame size|Expected ConnectionStart|Expected connection\.|Socket closed abruptly during opening handshake/i;

/**
 * Start-up failures that another attempt cannot fix: the user has to change AMQP_URL (or the
 * broker's users and vhosts). The start fails on the first one instead of after every retry.
 */
export function isPermanentConnectError(error: unknown): boolean {
  const message = errorMessage(error);
  // An untrusted certificate or a refused client certificate stays so until the files change.
  return /ACCESS_REFUSED|authenticat|NOT_ALLOWED|Expected ConnectionOpenOk|PRECONDITION.FAILED|ETIMEDOUT/i.test(message) || notAmqp.test(message) || describeTlsFailure('AMQP', '', message) !== undefined;
}

/** Turns amqplib's connection errors into one sentence a user can act on. `tls`: the AMQP_TLS_* files given. */
export function describeConnectError(url: string, error: unknown, tls?: TlsFiles): string {
  const message = errorMessage(error);
  const where = redactUrl(url);
  const tlsFailure = describeTlsFailure('AMQP', where, message, { secure: usesTls(url), clientCert: tls?.cert !== undefined });
  if (tlsFailure !== undefined) return tlsFailure;
  // A permission refused to a user who did log in: "configure access to queue 'q' in vhost '/' refused for user 'u'".
  const permission = /ACCESS_REFUSED - (configure|write|read) access to (queue|exchange) '([^']+)' in vhost '[^']*' refused for user '([^']+)'/.exec(message);
  if (permission !== null) {
    const [, access, kind, name, user] = permission;
    return `RabbitMQ at ${where} refused user ${user} ${access} access to ${kind} ${name}: its permissions do not allow it (rabbitmqctl list_user_permissions ${user}; docs/kubernetes.md, "Least privilege", lists each role's)`;
  }
  if (/ACCESS_REFUSED|403|authenticat/i.test(message)) return `RabbitMQ at ${where} refused the user name or password (check AMQP_URL)`;
  if (/ECONNREFUSED/.test(message)) return `cannot reach RabbitMQ at ${where}: connection refused (is it running? check AMQP_URL)`;
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return `cannot reach RabbitMQ at ${where}: unknown host (check AMQP_URL)`;
  if (/PRECONDITION.FAILED/i.test(message)) {
    const detail = /PRECONDITION_FAILED - ([^"]*)/.exec(message)?.[1] ?? message;
    const queue = /for queue '([^']+)'/.exec(detail)?.[1] ?? 'NAMESPACE.commands';
    // Older taskers set the work queue's x-delivery-limit to TASKER_DELIVERY_LIMIT; it is now a fixed backstop.
    return `RabbitMQ at ${where} already has this namespace's queues with other settings (${detail}); made by an older tasker? Once it is empty, delete it (rabbitmqctl delete_queue ${queue}) and start again, or use another TASKER_NAMESPACE`;
  }
  // A refused vhost closes the connection in place of ConnectionOpenOk; amqplib drops the reason.
  if (/vhost|NOT_ALLOWED|Expected ConnectionOpenOk/i.test(message)) {
    return `RabbitMQ at ${where} refused the virtual host "${amqpVhost(url)}": it does not exist, or the user may not use it (check the path of AMQP_URL; no path means "/")`;
  }
  if (notAmqp.test(message)) return `${where} does not answer as RabbitMQ does (is that RabbitMQ's AMQP port, usually 5672? check AMQP_URL)`;
  if (/ETIMEDOUT|timeout/i.test(message)) {
    return `cannot reach RabbitMQ at ${where}: no answer within ${handshakeTimeoutMs / 1000} s (check the host and port in AMQP_URL, and that no firewall drops the connection)`;
  }
  return `cannot connect to RabbitMQ at ${where}: ${message.replaceAll(url, where)}`;
}

function amqpVhost(url: string): string {
  try {
    const path = new URL(url).pathname.slice(1);
    return path === '' ? '/' : decodeURIComponent(path);
  } catch {
    return '?'; // checked before connecting: not reached
  }
}

/** What the publisher and the consumers read of the connection. */
export interface ConnectionState {
  /** The connection in use; undefined while reconnecting (and before the first connect). */
  readonly current: ChannelModel | undefined;
  /** True once close() was called: nothing is reopened after that. */
  readonly closing: boolean;
  /** Resolves once connected (at once if connected now), or when the session closes. */
  whenConnected(): Promise<void>;
}

export interface ConnectionOptions {
  url: string;
  logger: Logger;
  /** Shown by `rabbitmqctl list_connections` and the management UI. */
  connectionName: string;
  /** Retries of the first connection before giving up (start-up fails fast). */
  initialRetries: number;
  /** CA, client certificate and key for amqps:// (AMQP_TLS_*). Default: the system's CAs, no client certificate. */
  tls?: TlsFiles;
}

/** What the session does on every (re)connect and disconnect. */
export interface ConnectionHooks {
  /**
   * Runs on each new connection before it counts as connected (topology, publish channel). A
   * throw fails the attempt: recovery closes that connection and tries again with backoff.
   */
  prepare(model: ChannelModel): Promise<void>;
  /** Runs once the connection counts as connected, before waiters are released (consumers). */
  restore(model: ChannelModel): Promise<void>;
  /** The connection is gone (also when the session closes): forget the channels that lived on it. */
  lost(): void;
}

export class AmqpConnection implements ConnectionState {
  private model: ChannelModel | undefined;
  private recovering: RecoveringChannelModel | undefined;
  private isClosing = false;
  private connectedWaiters: (() => void)[] = [];
  /** Failures of the current outage; only the first is logged. */
  private failuresLogged = 0;

  constructor(private readonly options: ConnectionOptions) {}

  get current(): ChannelModel | undefined {
    return this.model;
  }

  get closing(): boolean {
    return this.isClosing;
  }

  whenConnected(): Promise<void> {
    return this.model !== undefined ? Promise.resolve() : new Promise((resolve) => this.connectedWaiters.push(resolve));
  }

  /** Connects, running `hooks` on this and every later connection; rejects with an InputError when the first connection fails. */
  async open(hooks: ConnectionHooks): Promise<void> {
    const { logger } = this.options;
    const recovering: RecoveringChannelModel = await amqp.connect(this.options.url, {
      // Node's tls.connect options, used by amqps:// only (amqplib picks TLS from the URL's scheme).
      ...this.options.tls,
      clientProperties: { connection_name: this.options.connectionName },
      // Small frames (acks, confirms, results) must not wait for Nagle's algorithm.
      noDelay: true,
      // A host that drops packets, or a server that never answers the handshake, fails the attempt.
      timeout: handshakeTimeoutMs,
      recovery: {
        initialDelay: 200,
        maxDelay: 10_000,
        initialMaxRetries: this.options.initialRetries,
        maxRetries: Infinity,
        // Resolves at once, so the 'connect-failed' listener is in place before the first attempt.
        waitForConnect: false,
        setup: async (model: ChannelModel) => {
          await this.onConnect(model, hooks);
        },
      },
    });
    this.recovering = recovering;
    await this.waitForFirstConnection(recovering);
    recovering.on('disconnect', (error: Error) => this.onDisconnect(error, hooks));
    recovering.on('error', (error: Error) => logger.debug({ err: { message: error.message } }, 'RabbitMQ connection error'));
  }

  async close(): Promise<void> {
    if (this.isClosing) return;
    this.isClosing = true;
    for (const resolve of this.connectedWaiters) resolve();
    await this.recovering?.close().catch((error: unknown) => this.options.logger.debug({ err: error }, 'error while closing the RabbitMQ connection'));
  }

  /** Must be called before anything awaits after amqp.connect, so the listener sees the first attempt. */
  private async waitForFirstConnection(recovering: RecoveringChannelModel): Promise<void> {
    let connectedOnce = false;
    let permanentFailure: Error | undefined;
    recovering.on('connect-failed', (error: Error) => {
      if (connectedOnce || this.isClosing || !isPermanentConnectError(error)) return;
      // Wrong password, unknown vhost, not RabbitMQ: retrying only makes the user wait.
      permanentFailure = error;
      recovering.close().catch(() => undefined); // never connected: nothing to close cleanly
    });
    try {
      await recovering.waitForConnect();
      connectedOnce = true;
    } catch (error) {
      const failure = permanentFailure ?? error;
      throw new InputError('config', describeConnectError(this.options.url, failure, this.options.tls), { cause: failure });
    }
  }

  private async onConnect(model: ChannelModel, hooks: ConnectionHooks): Promise<void> {
    const { logger } = this.options;
    // Socket errors surface here before 'close'; recovery handles the close. Unlistened, they would crash the process.
    model.on('error', (error: Error) => logger.debug({ err: { message: error.message } }, 'RabbitMQ connection error'));
    await hooks.prepare(model);
    this.model = model;
    await hooks.restore(model);
    if (this.failuresLogged > 0) logger.info('reconnected to RabbitMQ');
    this.failuresLogged = 0;
    const waiters = this.connectedWaiters;
    this.connectedWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private onDisconnect(error: Error, hooks: ConnectionHooks): void {
    this.model = undefined;
    hooks.lost();
    if (this.isClosing) return;
    // Log the first failure of an outage only; reconnection goes on with backoff.
    if (this.failuresLogged++ === 0) this.options.logger.warn({ err: { message: error?.message } }, 'lost the connection to RabbitMQ; reconnecting');
  }
}
