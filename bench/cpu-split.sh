#!/usr/bin/env bash
# Where the CPU of a distributed run goes: CPU time (user + system, from /proc) per command of each
# part (tasker, workers with the commands they start, RabbitMQ, Redis), for N x `true` through 4
# workers. CPU time, unlike wall time, hardly depends on what else the machine is doing.
#
#   bash bench/cpu-split.sh [N]                       # default 2000
#   BENCH_TASKER_REPO=/other/checkout bash bench/cpu-split.sh
#   BENCH_BUNDLE_SIZE=1 bash bench/cpu-split.sh       # without bundles
#   BENCH_LOCAL=0 bash bench/cpu-split.sh             # the distributed run only
#
# Then the same commands in the local mode (`tasker run -j 4`: the tasker, its runners and the
# commands; and the tasker's own share, its CPU above its runners) and the ratio of the two
# totals. While every CPU is busy, distributed commands/s can be at most (local CPU per command /
# distributed CPU per command) of local commands/s: the distributed mode runs the same runners
# and commands, plus a worker, a broker and Redis.
# Floors follow the distributed figures (bench/worker-floor.mjs): a Node process doing nothing but
# each command's I/O (a runner's request and replies, one Redis script call), its runner with the
# `true` commands, and Redis serving that one call per command.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
code=${BENCH_TASKER_REPO:-$repo}
n=${1:-2000}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export TASKER_NAMESPACE=cpu$$ LOG_LEVEL=warn
# Signed, as a deployment runs (the signing key is required with AMQP_URL).
export TASKER_SIGNING_KEY=${TASKER_SIGNING_KEY:-$(node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('hex'))")}
[[ -n ${BENCH_BUNDLE_SIZE:-} ]] && export TASKER_BUNDLE_SIZE=$BENCH_BUNDLE_SIZE
tmp=$(mktemp -d)
pids=()
# The run's queues and exchanges go too: the broker is shared and they would stay.
delete_topology() {
  node --input-type=module -e "
    import amqp from '$repo/node_modules/amqplib/channel_api.js';
    const c = await amqp.connect(process.env.AMQP_URL);
    for (const q of ['$TASKER_NAMESPACE.commands', '$TASKER_NAMESPACE.commands.dead']) { const ch = await c.createChannel(); ch.on('error', () => {}); await ch.deleteQueue(q).catch(() => {}); }
    const ch = await c.createChannel(); await ch.deleteExchange('$TASKER_NAMESPACE').catch(() => {}); await ch.deleteExchange('$TASKER_NAMESPACE.dead').catch(() => {});
    await c.close();" 2>/dev/null || true
}
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null; delete_topology; redis-cli -u "$REDIS_URL" --scan --pattern "$TASKER_NAMESPACE:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null; rm -rf "$tmp"' EXIT
ticks=$(getconf CLK_TCK)
# cpu PID: utime + stime + cutime + cstime (children that were waited for: the commands) in ticks
cpu() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
sum_cpu() { local s=0; for p in "$@"; do s=$((s + $(cpu "$p"))); done; echo "$s"; }
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) print "true" }' >"$tmp/jobs"
for _ in 1 2 3 4; do "$code/bin/worker.js" --workdir "$tmp" --concurrency 1 2>>"$tmp/w.log" & pids+=($!); done
sleep 2
broker=$(pgrep -f 'beam.smp.*rabbit' | head -1)
redis=$(pgrep -x redis-server | head -1)
# The runners (bash) the workers start: their CPU and their commands' shows in the worker's cutime only once they exit.
w0=$(sum_cpu "${pids[@]}"); b0=$(cpu "$broker"); r0=$(cpu "$redis")
runners0=$(for p in "${pids[@]}"; do pgrep -P "$p" || true; done | while read -r c; do cpu "$c"; done | awk '{ s += $1 } END { print s + 0 }')
/usr/bin/time -f '%U %S' -o "$tmp/t.time" "$code/bin/tasker.js" run --workdir "$tmp" --run-id cpu "$tmp/jobs" >/dev/null 2>"$tmp/t.err" || { cat "$tmp/t.err"; exit 1; }
runners1=$(for p in "${pids[@]}"; do pgrep -P "$p" || true; done | while read -r c; do cpu "$c"; done | awk '{ s += $1 } END { print s + 0 }')
w1=$(sum_cpu "${pids[@]}"); b1=$(cpu "$broker"); r1=$(cpu "$redis")
read -r tu ts <"$tmp/t.time"
per() { awk -v t="$1" -v k="$ticks" -v n="$n" 'BEGIN { printf "%.3f", 1000 * t / k / n }'; }
tasker_ticks=$(awk -v u="$tu" -v s="$ts" -v k="$ticks" 'BEGIN { printf "%d", (u + s) * k }')
echo "CPU ms per command, $n x true, 4 workers, code $(git -C "$code" rev-parse --short HEAD 2>/dev/null || echo '?'), bundle size ${TASKER_BUNDLE_SIZE:-auto}"
printf '  %-34s %s\n' "tasker (with Node start-up)" "$(per "$tasker_ticks")"
printf '  %-34s %s\n' "workers (Node)" "$(per $((w1 - w0)))"
printf '  %-34s %s\n' "runners and commands (bash, true)" "$(per $((runners1 - runners0)))"
printf '  %-34s %s\n' "RabbitMQ (whole broker)" "$(per $((b1 - b0)))"
printf '  %-34s %s\n' "Redis" "$(per $((r1 - r0)))"
printf '  %-34s %s\n' "total" "$(per $((tasker_ticks + w1 - w0 + runners1 - runners0 + b1 - b0 + r1 - r0)))"
# The floor of the workers' Node (bench/worker-floor.mjs): a Node process doing only each command's
# I/O (a runner's request and replies, one Redis script call) and nothing else, in this same run.
read -r floor_node floor_runner floor_redis < <(node "$repo/bench/worker-floor.mjs" "$((n < 5000 ? n : 5000))")
printf '  %-34s %s\n' "floor: worker's I/O alone (Node)" "$floor_node"
printf '  %-34s %s\n' "floor: one runner and true" "$floor_runner"
printf '  %-34s %s\n' "floor: Redis, one call per command" "$floor_redis"
[[ ${BENCH_LOCAL:-1} == 0 ]] && exit 0
# The local tasker's runners are not waited for (they go when it exits), so its own rusage lacks
# them: the tasker and its runners (with their commands) are sampled from /proc until it ends.
AMQP_URL='' "$code/bin/tasker.js" run -j 4 --workdir "$tmp/local" --run-id cpu "$tmp/jobs" >/dev/null 2>"$tmp/l.err" &
launcher=$!
local_ticks=0 local_own=0
while kill -0 "$launcher" 2>/dev/null; do
  node_pid=$(pgrep -P "$launcher" -x node || echo "$launcher")
  own=$(awk '{ print $14 + $15 }' "/proc/$node_pid/stat" 2>/dev/null || echo 0)
  seen=$(( $(cpu "$node_pid") + $(for c in $(pgrep -P "$node_pid"); do cpu "$c"; done | awk '{ s += $1 } END { print s + 0 }') ))
  ((seen > local_ticks)) && local_ticks=$seen
  ((own > local_own)) && local_own=$own
  sleep 0.05
done
wait "$launcher" || { cat "$tmp/l.err"; exit 1; }
distributed_ticks=$((tasker_ticks + w1 - w0 + runners1 - runners0 + b1 - b0 + r1 - r0))
printf '  %-34s %s\n' "local -j 4 (tasker, runners, true)" "$(per "$local_ticks")"
printf '  %-34s %s\n' "  of which the tasker (Node)" "$(per "$local_own")"
printf '  %-34s %s\n' "local / distributed (CPU bound)" "$(awk -v l="$local_ticks" -v d="$distributed_ticks" 'BEGIN { printf "%.2fx", l / d }')"
