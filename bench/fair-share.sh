#!/usr/bin/env bash
# Fair share between runs of one pool (issue 26): on 4 workers, a small run B (40 x `sleep 0.05`)
# alone, then started 3 s after a big run A (3,000 x `sleep 0.05`). Prints B's wall time beside A
# as a ratio of its time alone (measured in the same run), and A's time. Asserts nothing.
#
#   bash bench/fair-share.sh                        # B at normal priority
#   BENCH_PRIORITY=high bash bench/fair-share.sh    # B with --priority high
#   BENCH_TASKER_REPO=/path/to/other/checkout bash bench/fair-share.sh   # another build (no --priority before it existed)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
code=${BENCH_TASKER_REPO:-$repo}
big=${BENCH_BIG:-3000}
small=${BENCH_SMALL:-40}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export TASKER_NAMESPACE=fairbench$$
export LOG_LEVEL=warn
export TASKER_SIGNING_KEY=${TASKER_SIGNING_KEY:-$(node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('hex'))")}
priority=()
[[ -n ${BENCH_PRIORITY:-} ]] && priority=(--priority "$BENCH_PRIORITY")

[[ -f $code/dist/tasker/main.js ]] || (cd "$code" && npm run build >/dev/null)
work=$(mktemp -d "${TMPDIR:-/tmp}/tasker-fairbench.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq "$big"); do echo 'sleep 0.05'; done >"$work/a.sh"
for _ in $(seq "$small"); do echo 'sleep 0.05'; done >"$work/b.sh"
for _ in 1 2 3 4; do
  WORKDIR=$work node "$code/bin/worker.js" >/dev/null 2>>"$work/workers.err" &
  pids+=($!)
done
sleep 2

seconds() { date +%s.%N; }
start=$(seconds)
node "$code/bin/tasker.js" run --workdir "$work" --run-id b-alone "${priority[@]}" "$work/b.sh" >/dev/null 2>>"$work/b-alone.err"
alone=$(awk "BEGIN { print $(seconds) - $start }")

a_start=$(seconds)
node "$code/bin/tasker.js" run --workdir "$work" --run-id a "$work/a.sh" >/dev/null 2>>"$work/a.err" &
a_pid=$!
sleep 3
start=$(seconds)
node "$code/bin/tasker.js" run --workdir "$work" --run-id b "${priority[@]}" "$work/b.sh" >/dev/null 2>>"$work/b.err"
beside=$(awk "BEGIN { print $(seconds) - $start }")
wait "$a_pid"
a_time=$(awk "BEGIN { print $(seconds) - $a_start }")

echo "fair share: 4 workers, A = $big x sleep 0.05, B = $small x sleep 0.05${BENCH_PRIORITY:+ (--priority $BENCH_PRIORITY)}, code $code ($(git -C "$code" rev-parse --short HEAD 2>/dev/null || echo '?'))"
printf '%-40s %10.2f s\n' "B alone" "$alone"
printf '%-40s %10.2f s   %.1fx alone, + %.2f s\n' "B started 3 s after A" "$beside" "$(awk "BEGIN { print $beside / $alone }")" "$(awk "BEGIN { print $beside - $alone }")"
printf '%-40s %10.2f s\n' "A" "$a_time"
