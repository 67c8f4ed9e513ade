import type { Redis } from 'ioredis';

/**
 * Script calls made in one tick go to Redis as one call of one script that runs each of them in
 * turn: a bundle's begins arrive together, and a command's finish goes with the start of the next
 * one (the executor starts it before the finished one's result is handled). Each call keeps its
 * own keys, arguments and reply; the batch only saves the per-call cost of the client (a command
 * object, a promise and a reply each) and of Redis (a script call each). Measured: a third of the
 * client's calls per command, which were a sixth of a worker's CPU (bench/cpu-split.sh).
 *
 * The calls of a batch run in the order they were made, atomically as a whole (each alone was
 * atomic). A batch that fails (Redis unreachable, a script error) fails each of its calls.
 */

export interface ScriptBatch<Name extends string> {
  call(name: Name, keys: readonly string[], args: readonly string[]): Promise<unknown>;
}

interface Pending {
  name: string;
  keys: readonly string[];
  args: readonly string[];
  resolve: (reply: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * The batch script: each named script body becomes a function of where its call's keys and
 * arguments start in the batch's KEYS and ARGV (`KEYS[2]` is read as `KEYS[k + 2]`), so that no
 * table is built per call (measured: a third of the batch script's own time in Redis). ARGV: the
 * number of calls, then per call its name, its key count, its argument count and its arguments;
 * KEYS: every call's keys in order. Replies: one per call.
 */
export function batchScript(bodies: Readonly<Record<string, string>>): string {
  const functions = Object.entries(bodies).map(([name, body]) => `scripts['${name}'] = function(k, a)\n${offsetBody(name, body)}\nend`);
  return `local scripts = {}
${functions.join('\n')}
local replies = {}
local k, a = 0, 1
for i = 1, tonumber(ARGV[1]) do
  local name, nk, na = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 3
  replies[i] = scripts[name](k, a)
  k, a = k + nk, a + na
end
return replies`;
}

/** A body's `KEYS[n]` and `ARGV[n]` read at its call's offsets; a body that reads them otherwise (`#ARGV`, `KEYS[i]`) cannot be batched. */
function offsetBody(name: string, body: string): string {
  const offset = body.replace(/\b(KEYS|ARGV)\[(\d+)\]/g, (_, table: string, index: string) => `${table}[${table === 'KEYS' ? 'k' : 'a'} + ${index}]`);
  if (/\b(KEYS|ARGV)\b(?!\[[ka] \+ \d+\])/.test(offset)) throw new Error(`script ${name} reads KEYS or ARGV other than by a literal index: it cannot be batched`);
  return offset;
}

/** `bodies`' scripts, called through one batch script defined on the client as `commandName`. */
export function createScriptBatch<Name extends string>(redis: Redis, commandName: string, bodies: Readonly<Record<Name, string>>): ScriptBatch<Name> {
  // Sent by hash (EVALSHA; ioredis loads it on a NOSCRIPT reply); the key count varies by call.
  redis.defineCommand(commandName, { lua: batchScript(bodies) });
  const run = (redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown[]>>)[commandName]!.bind(redis);
  let pending: Pending[] = [];
  const flush = (): void => {
    const calls = pending;
    pending = [];
    const keys = calls.flatMap((call) => call.keys);
    const args = calls.flatMap((call) => [call.name, String(call.keys.length), String(call.args.length), ...call.args]);
    run(keys.length, ...keys, String(calls.length), ...args).then(
      (replies) => calls.forEach((call, index) => call.resolve(replies[index])),
      (error: unknown) => calls.forEach((call) => call.reject(error)),
    );
  };
  return {
    call(name, keys, args) {
      return new Promise((resolve, reject) => {
        // At the event loop's check phase, as ioredis's auto-pipelining: the calls of this turn's
        // callbacks, ticks and promise reactions all join the batch.
        if (pending.length === 0) setImmediate(flush);
        pending.push({ name, keys, args, resolve, reject });
      });
    },
  };
}
