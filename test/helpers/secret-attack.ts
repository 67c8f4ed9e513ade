import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A command that tries every way we know to read the secrets of the process that started it (the
 * tasker or a worker) and prints what it found: its own environment, /proc/1/environ (PID 1 of a
 * container: tini, with the pod's whole environment), its runner's and the runner's parent's
 * environment and command line, every process's environ and cmdline, the parent's memory (every
 * writable mapping, searched for the shapes of the secrets), and secret files. Used by
 * test/e2e/command-user.test.ts on this machine and test/containers/images.test.ts in the images.
 */
export function attackScript(secretFiles: readonly string[]): string {
  return String.raw`#!/bin/bash
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
echo "== own environment"; env
echo "== /proc/1/environ"; tr '\0' '\n' < /proc/1/environ
echo "== runner (parent, pid $PPID)"; tr '\0' '\n' < /proc/$PPID/environ; tr '\0' ' ' < /proc/$PPID/cmdline; echo
# Up the tree past the shells (the command's own, the runner) to the process that started them.
holder=$PPID
while [[ $holder -gt 1 && $(awk '{print $2}' /proc/$holder/stat) =~ ^\((bash|sh|tee)\)$ ]]; do
  holder=$(awk '{print $4}' /proc/$holder/stat)
done
echo "== the runners' parent ($(awk '{print $2}' /proc/$holder/stat), pid $holder): environ, cmdline, maps, memory"
tr '\0' '\n' < /proc/$holder/environ
tr '\0' ' ' < /proc/$holder/cmdline; echo
head -3 /proc/$holder/maps
while read -r range perms _ _ _ _; do
  [[ $perms == rw* ]] || continue
  start=$((16#${'$'}{range%-*})); end=$((16#${'$'}{range#*-}))
  (( end - start <= 64 * 1024 * 1024 )) || continue
  dd if=/proc/$holder/mem bs=4096 skip=$((start / 4096)) count=$(((end - start) / 4096)) 2>/dev/null |
    grep -a -o -E '(TASKER_SIGNING_KEY|RABBITMQ_PASSWORD|AMQP_URL|REDIS_URL)=[^[:cntrl:]]{1,200}|[a-z]+://[^@/[:space:][:cntrl:]]*:[^@/[:space:][:cntrl:]]*@' | sort -u
done < /proc/$holder/maps
echo "== every process"
for p in /proc/[0-9]*; do
  echo "-- $p"; tr '\0' '\n' < $p/environ; tr '\0' ' ' < $p/cmdline; echo
done
echo "== secret files"
${secretFiles.map((file) => `cat '${file}'; echo`).join('\n')}
exit 0
`;
}

/** The names of the secrets found in `text`. */
export function leaksIn(text: string, secrets: Record<string, string>): string[] {
  return Object.entries(secrets)
    .filter(([, value]) => text.includes(value))
    .map(([name]) => name);
}

/** Every file under `dir` (logs, outputs, run records), path and text. */
export function filesUnder(dir: string): { path: string; text: string }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .map((path) => ({ path, text: readFileSync(path, 'latin1') }));
}
