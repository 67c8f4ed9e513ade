import { execFileSync } from 'node:child_process';

/**
 * The broker under test, for the tests that change it (consumer timeout, restart, a user of their
 * own): always through that broker's own `rabbitmqctl`, so that a run against a RabbitMQ in a
 * container never touches the machine's RabbitMQ, and the other way round. The global setups
 * provide it next to `amqpUrl` (vitest `provide`/`inject`; plain data).
 */
export interface Broker {
  /** For messages: "the local RabbitMQ", "RabbitMQ 4.0.5 in podman container tasker-test-...". */
  name: string;
  /** The argv prefix of its rabbitmqctl: `rabbitmqctl`, or `podman exec CONTAINER rabbitmqctl`. */
  rabbitmqctl: string[];
  /** Environment for that command (e.g. CONTAINERS_CONF for podman). */
  env: Record<string, string>;
  /** Started by the tests themselves (a container, a private node): theirs to stop and reconfigure. */
  startedByTests: boolean;
}

export const localBroker: Broker = { name: 'the local RabbitMQ', rabbitmqctl: ['rabbitmqctl'], env: {}, startedByTests: false };

/** Runs the broker's rabbitmqctl; the error says which broker and what failed. */
export function rabbitmqctl(broker: Broker, args: string[], timeoutMs = 120_000): string {
  const [command, ...prefix] = broker.rabbitmqctl;
  try {
    return execFileSync(command!, [...prefix, ...args], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...broker.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`rabbitmqctl ${args[0] ?? ''} on ${broker.name} failed (${broker.rabbitmqctl.join(' ')}): ${stderr || (error as Error).message}`, { cause: error });
  }
}

/** The broker's application environment value of `key` (a number), or `fallback` when unset. */
function rabbitEnv(broker: Broker, key: string, fallback: string): string {
  const answer = rabbitmqctl(broker, ['eval', `application:get_env(rabbit, ${key}).`]).trim();
  return /\{ok,(\d+)\}/.exec(answer)?.[1] ?? fallback;
}

/**
 * Runs `body` with the broker's consumer timeout lowered to `timeoutMs` (checked every 500 ms),
 * then sets both values back. Channels opened meanwhile take the lowered timeout.
 */
export async function withConsumerTimeout<T>(broker: Broker, timeoutMs: number, body: () => Promise<T>): Promise<T> {
  const timeout = rabbitEnv(broker, 'consumer_timeout', '1800000');
  const tick = rabbitEnv(broker, 'channel_tick_interval', '60000');
  const set = (key: string, value: string): void => void rabbitmqctl(broker, ['eval', `application:set_env(rabbit, ${key}, ${value}).`]);
  set('consumer_timeout', String(timeoutMs));
  set('channel_tick_interval', '500');
  try {
    return await body();
  } finally {
    set('consumer_timeout', timeout);
    // Never unset it: RabbitMQ 3.10 cannot open channels without this setting.
    set('channel_tick_interval', tick);
  }
}

/** Stops the broker's RabbitMQ application and starts it again after `pauseMs`, as a restart does. */
export async function restartBroker(broker: Broker, pauseMs = 1000): Promise<void> {
  rabbitmqctl(broker, ['stop_app']);
  await new Promise((resolve) => setTimeout(resolve, pauseMs));
  rabbitmqctl(broker, ['start_app']);
}
