/**
 * The leak check of the adapter tests: this process's open TCP sockets (Redis and RabbitMQ
 * connections among them), counted here, so other users of the shared services do not matter.
 */

export function openSockets(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'TCPSocketWrap').length;
}

/** Waits up to a second for sockets closed a moment ago to be released, then says how many are open. */
export async function socketsSettledAt(baseline: number): Promise<number> {
  const deadline = Date.now() + 1000;
  while (openSockets() > baseline && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
  return openSockets();
}
