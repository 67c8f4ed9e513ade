#!/usr/bin/env bash
# Distributed benchmark: the tasker dispatching through RabbitMQ to 4 worker processes.
#
#   bash bench/distributed.sh
#   BENCH_WORKER_CONCURRENCY=2 bash bench/distributed.sh
#
# Needs RabbitMQ and Redis (AMQP_URL, REDIS_URL; default: the local ones). Prints, asserts nothing:
#   2000 x `true`       : commands per second (target >= 1000/s), first with freshly started
#                         workers, then again with the same (warm) workers
#   400 x `sleep 0.05`  : percent of ideal, ideal = 400 * 0.05 / (workers * concurrency) (target >= 95%),
#                         on the phase duration the tasker records (summary.json) and on wall time.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
workers=${BENCH_WORKERS:-4}
concurrency=${BENCH_WORKER_CONCURRENCY:-1}
true_lines=2000
sleep_lines=400
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export TASKER_NAMESPACE=bench$$
export LOG_LEVEL=warn

[[ -f $repo/dist/tasker/main.js ]] || (cd "$repo" && npm run build >/dev/null)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tasker-dbench.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  node --input-type=module -e "
    import amqp from '$repo/node_modules/amqplib/channel_api.js';
    const c = await amqp.connect(process.env.AMQP_URL);
    for (const q of ['$TASKER_NAMESPACE.commands', '$TASKER_NAMESPACE.commands.dead']) { const ch = await c.createChannel(); ch.on('error', () => {}); await ch.deleteQueue(q).catch(() => {}); }
    const ch = await c.createChannel(); await ch.deleteExchange('$TASKER_NAMESPACE').catch(() => {}); await ch.deleteExchange('$TASKER_NAMESPACE.dead').catch(() => {});
    await c.close();" 2>/dev/null || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$TASKER_NAMESPACE:*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
now() { date +%s.%N; }

awk -v n=$true_lines 'BEGIN { for (i = 0; i < n; i++) print "true" }' >"$tmp/true.jobs"
awk -v n=$sleep_lines 'BEGIN { for (i = 0; i < n; i++) print "sleep 0.05" }' >"$tmp/sleep.jobs"

for _ in $(seq "$workers"); do
  node "$repo/bin/worker.js" --workdir "$tmp" --concurrency "$concurrency" 2>>"$tmp/workers.log" &
  pids+=($!)
done
for _ in $(seq 100); do
  [[ $(grep -c 'waiting for commands' "$tmp/workers.log" 2>/dev/null || true) -ge $workers ]] && break
  LOG_LEVEL=info true; sleep 0.1
done
# The worker logs at warn level; count consumers instead.
sleep 1

run() { # run NAME FILE -> prints "wall_seconds phase_seconds"
  local start end
  start=$(now)
  node "$repo/bin/tasker.js" run --run-id "$1" --workdir "$tmp" "$2" >"$tmp/$1.out" 2>"$tmp/$1.err" || { echo "tasker failed:"; cat "$tmp/$1.out" "$tmp/$1.err"; exit 1; }
  end=$(now)
  local phase_ms
  phase_ms=$(node -e "console.log(require('$tmp/.tasker/runs/$1/summary.json').phases[0].durationMs)")
  echo "$(calc "$end - $start" 3) $(calc "$phase_ms / 1000" 3)"
}

echo "tasker distributed benchmark: $(nproc) CPUs, $workers workers x concurrency $concurrency, RabbitMQ $(rabbitmqctl version 2>/dev/null || echo '?')"
# The first run meets freshly started workers (Node still compiling their hot paths); the second
# shows the steady state of long-lived workers, which is what a cluster has. Both are printed.
read -r wall phase < <(run true1 "$tmp/true.jobs")
true_rate_phase=$(calc "$true_lines / $phase" 0)
true_rate_wall=$(calc "$true_lines / $wall" 0)
read -r wall2 phase2 < <(run true2 "$tmp/true.jobs")
true_rate_phase2=$(calc "$true_lines / $phase2" 0)
true_rate_wall2=$(calc "$true_lines / $wall2" 0)
read -r swall sphase < <(run sleep1 "$tmp/sleep.jobs")
ideal=$(calc "$sleep_lines * 0.05 / ($workers * $concurrency)" 3)
pct_phase=$(calc "100 * $ideal / $sphase" 1)
pct_wall=$(calc "100 * $ideal / $swall" 1)

printf '\n%-34s %12s %12s %10s\n' "measure" "phase" "wall" "target"
printf '%-34s %12s %12s %10s\n' "$true_lines x true: commands/s" "$true_rate_phase" "$true_rate_wall" ">= 1000"
printf '%-34s %12s %12s %10s\n' "  again, warm workers: commands/s" "$true_rate_phase2" "$true_rate_wall2" ">= 1000"
printf '%-34s %12s %12s %10s\n' "$sleep_lines x sleep 0.05: % of ideal" "$pct_phase%" "$pct_wall%" ">= 95%"
printf '%-34s %12s %12s\n' "  (ideal ${ideal}s; took)" "${sphase}s" "${swall}s"
