#!/usr/bin/env bash
# Distributed benchmark: the tasker dispatching through RabbitMQ to 4 worker processes, against
# baselines measured in the same run on the same RabbitMQ and Redis. Prints figures, asserts nothing.
#
#   bash bench/distributed.sh
#   BENCH_BIG_LINES=20000 bash bench/distributed.sh       # quicker (c), and (e) reuses its run
#   BENCH_ORIGINAL_LINES=5000 ...                          # a shorter (e) (default 20,000)
#   BENCH_TASKER_REPO=/path/to/older/checkout bash ...    # the same measures of another build
#
#   (a) 2000 x `true`: our commands/s, and those of a bare peer (bench/bare-peer.mjs: a publisher
#       and 4 consumers on a plain durable queue, `sh -c`, ack, reply, nothing else): the ratio.
#   (b) 400 x `sleep 0.05`: percent of ideal (400 x 0.05 s / 4 lanes = 5 s), and percent of a bare
#       4-lane bash loop running the same sleeps (the machine's floor for starting processes). For
#       scale, the same loop doing per sleep only what any executor must do per command (a new log
#       file, its own process group, its pid known while it runs), the executor's own floor
#       (bench/runner-floor.mjs: 4 bash runners handed every request up front, a log per command,
#       no Node, broker or Redis) and the local mode (-j 4).
#   (c) BENCH_BIG_LINES (200,000) x `true`: wall time, commands/s, tasker peak RSS, Redis
#       used_memory before, at its peak and after, and the run's own keys after (MEMORY USAGE).
#   (d) the local mode (`tasker run -j 4`) on the commands of (a) and (c): distributed / local.
#   (e) the original asreview-cloud pair (bench/original-pair: a Python tasker publishing every line
#       to a durable queue and counting replies, 4 Python workers with prefetch 1 running each line
#       with subprocess.run(shell=True)) on the same broker, on 2000 x `true`, 400 x `sleep 0.05`
#       and BENCH_ORIGINAL_LINES (20,000) x `true`: ours / original (original's seconds / ours),
#       distributed and local, on the processes' wall times (both sides' start-up included).
#       Beside them, the floor: the executor alone (bench/runner-floor.mjs, as in (b)) on the same
#       BENCH_ORIGINAL_LINES, the most any executor that gives each command its own log file, its
#       process group and its pid reaches on this machine, with no Node, broker or Redis at all.
#   (f) fixed costs of our runs: from `tasker run` starting to the first command started and from
#       the last command's end to the exit (results.jsonl against the times the bench took), and
#       what the start loses to the steady rate of the middle half (the bundle size ramp, and
#       anything else slower early on), and commands/s per quarter of the run (bench/fixed-costs.mjs).
# Our commands/s are taken on the phase duration the tasker records (summary.json: no Node
# start-up), the bare peer's from its first publish to its last reply. The tasker and workers are
# started as users and the images start them: bin/*.js run as programs, with their shebang's flags.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
code=${BENCH_TASKER_REPO:-$repo}
workers=4
big=${BENCH_BIG_LINES:-200000}
orig=${BENCH_ORIGINAL_LINES:-20000}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export TASKER_NAMESPACE=bench$$
export LOG_LEVEL=warn
# Signed, as a deployment runs (the signing key is required with AMQP_URL).
export TASKER_SIGNING_KEY=${TASKER_SIGNING_KEY:-$(node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('hex'))")}

[[ -f $code/dist/tasker/main.js ]] || (cd "$code" && npm run build >/dev/null)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tasker-dbench.XXXXXX")
ORIGINAL_DIR=$tmp/original
mkdir -p "$ORIGINAL_DIR"
# shellcheck source=bench/original-pair/pair.sh
source "$repo/bench/original-pair/pair.sh"
pids=()
stop_pids() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_pids
  original_cleanup
  node --input-type=module -e "
    import amqp from '$repo/node_modules/amqplib/channel_api.js';
    const c = await amqp.connect(process.env.AMQP_URL);
    for (const q of ['$TASKER_NAMESPACE.commands', '$TASKER_NAMESPACE.commands.dead', 'bare$$']) { const ch = await c.createChannel(); ch.on('error', () => {}); await ch.deleteQueue(q).catch(() => {}); }
    const ch = await c.createChannel(); await ch.deleteExchange('$TASKER_NAMESPACE').catch(() => {}); await ch.deleteExchange('$TASKER_NAMESPACE.dead').catch(() => {});
    await c.close();" 2>/dev/null || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$TASKER_NAMESPACE:*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
now() { date +%s.%N; }
lines() { awk -v n="$1" -v c="$2" 'BEGIN { for (i = 0; i < n; i++) print c }' >"$3"; }
redis_memory() { redis-cli -u "$REDIS_URL" info memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }
phase_seconds() { node -e "console.log(require('$1/.tasker/runs/$2/summary.json').phases[0].durationMs / 1000)"; }

lines 2000 true "$tmp/true.jobs"
lines 400 'sleep 0.05' "$tmp/sleep.jobs"
lines "$big" true "$tmp/big.jobs"
lines "$orig" true "$tmp/orig.jobs"

start_workers() {
  for _ in $(seq "$workers"); do
    "$code/bin/worker.js" --workdir "$tmp/dist" --concurrency 1 2>>"$tmp/workers.log" &
    pids+=($!)
  done
  sleep 2
}

# run_tasker NAME FILE [ARGS...] -> "phase_seconds wall_seconds"; distributed unless -j is given.
# Its fixed costs go to $tmp/NAME.fixed (bench/fixed-costs.mjs).
run_tasker() {
  local name=$1 file=$2 dir=$tmp/dist start end
  shift 2
  [[ " $* " == *" -j "* ]] && dir=$tmp/local
  start=$(date +%s%N)
  if [[ " $* " == *" -j "* ]]; then
    AMQP_URL='' /usr/bin/time -v -o "$tmp/$name.time" "$code/bin/tasker.js" run --run-id "$name" --workdir "$dir" "$@" "$file" >"$tmp/$name.out" 2>"$tmp/$name.err" || { echo "tasker failed:"; tail "$tmp/$name.out" "$tmp/$name.err"; exit 1; }
  else
    /usr/bin/time -v -o "$tmp/$name.time" "$code/bin/tasker.js" run --run-id "$name" --workdir "$dir" "$@" "$file" >"$tmp/$name.out" 2>"$tmp/$name.err" || { echo "tasker failed:"; tail "$tmp/$name.out" "$tmp/$name.err"; exit 1; }
  fi
  end=$(date +%s%N)
  node "$repo/bench/fixed-costs.mjs" "$dir/.tasker/runs/$name" "$start" "$end" >"$tmp/$name.fixed"
  echo "$(phase_seconds "$dir" "$name") $(calc "($end - $start) / 1e9" 3)"
}
peak_rss_mb() { awk -F': *' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$tmp/$1.time"; }

bare_rate() { # 4 consumers, 1 publisher: commands/s
  local cpids=() out
  for _ in $(seq "$workers"); do node "$repo/bench/bare-peer.mjs" consume "bare$$" & cpids+=($!); done
  sleep 1.5
  out=$(node "$repo/bench/bare-peer.mjs" publish "bare$$" "$tmp/true.jobs")
  for pid in "${cpids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${cpids[@]}" 2>/dev/null || true
  read -r n s <<<"$out"
  calc "$n / $s" 0
}

runner_floor() { # runner_floor JOBS_FILE DIR: the executor alone, 4 runners, a log per command: seconds
  local out
  out=$(node "$repo/bench/runner-floor.mjs" "$workers" "$1" "$2")
  echo "${out#* }"
}

bash_floor() { # 4 lanes of 100 x sleep 0.05: seconds
  local start end
  start=$(now)
  for _ in 1 2 3 4; do (for _ in $(seq 100); do sleep 0.05; done) & done
  wait
  end=$(now)
  calc "$end - $start" 3
}

# The same loop, each sleep doing only what any executor must do for a command: its own log file
# (a new one per attempt), its own process group (so a timeout kills all it started: set -m), and
# its pid known while it runs (started in the background, then waited for): seconds.
bash_floor_needs() {
  local start end
  mkdir -p "$tmp/needs"
  start=$(now)
  for lane in 1 2 3 4; do (for i in $(seq 100); do set -m; sleep 0.05 </dev/null >"$tmp/needs/$lane.$i.log" 2>&1 & c=$!; set +m; wait $c; done) & done
  wait
  end=$(now)
  calc "$end - $start" 3
}

mkdir -p "$tmp/dist" "$tmp/local"
echo "tasker distributed benchmark: $(nproc) CPUs, $workers workers x concurrency 1, RabbitMQ $(rabbitmqctl version 2>/dev/null || echo '?'), code $code ($(git -C "$code" rev-parse --short HEAD 2>/dev/null || echo '?'))"
start_workers

# (a) Ours twice (fresh, then warm workers: the better is the steady state a cluster has), bare once.
read -r a1 a1_wall < <(run_tasker true1 "$tmp/true.jobs")
read -r a2 a2_wall < <(run_tasker true2 "$tmp/true.jobs")
ours_a_wall=$(calc "$a1_wall < $a2_wall ? $a1_wall : $a2_wall" 3)
ours_a=$(calc "2000 / ($a1 < $a2 ? $a1 : $a2)" 0)
bare_a=$(bare_rate)

# (b)
read -r sleep_phase sleep_wall < <(run_tasker sleep1 "$tmp/sleep.jobs")
floor_b=$(bash_floor)
needs_b=$(bash_floor_needs)
runner_b=$(runner_floor "$tmp/sleep.jobs" "$tmp/runner-floor")

# (c) with Redis sampled every 0.2 s for its peak.
mem_before=$(redis_memory)
(peak=0; while :; do m=$(redis_memory); ((m > peak)) && peak=$m && echo "$peak" >"$tmp/redis.peak"; sleep 0.2; done) &
sampler=$!
read -r big_phase big_wall < <(run_tasker big "$tmp/big.jobs")
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
mem_after=$(redis_memory)
mem_peak=$(cat "$tmp/redis.peak" 2>/dev/null || echo "$mem_after")
run_keys_bytes=$(redis-cli -u "$REDIS_URL" --scan --pattern "$TASKER_NAMESPACE:run:big:*" | while read -r key; do redis-cli -u "$REDIS_URL" memory usage "$key"; done | awk '{ s += $1 } END { print s + 0 }')
big_rss=$(peak_rss_mb big)
# (e), ours on BENCH_ORIGINAL_LINES: the run of (c) when the sizes are the same.
orig_name=big orig_wall=$big_wall
if ((orig != big)); then
  orig_name=orig
  read -r _ orig_wall < <(run_tasker orig "$tmp/orig.jobs")
fi
stop_pids

# (e) The original pair, with our workers stopped: best of two on (a), once on the others.
have_original=no
if original_ready; then
  have_original=yes
  original_start_workers "$workers"
  o1=$(original_run "$tmp/true.jobs")
  o2=$(original_run "$tmp/true.jobs")
  original_a=$(calc "$o1 < $o2 ? $o1 : $o2" 3)
  original_sleep=$(original_run "$tmp/sleep.jobs")
  original_big=$(original_run "$tmp/orig.jobs")
  original_stop_workers
  # Beside it, the most any executor that gives each command a log file of its own reaches here.
  runner_orig=$(runner_floor "$tmp/orig.jobs" "$tmp/runner-floor-orig")
else
  echo "python3-pika is missing and could not be installed: the original pair (e) is skipped" >&2
fi

# (d)
read -r l1 _ < <(run_tasker local1 "$tmp/true.jobs" -j 4)
read -r l2 _ < <(run_tasker local2 "$tmp/true.jobs" -j 4)
local_a=$(calc "2000 / ($l1 < $l2 ? $l1 : $l2)" 0)
read -r local_big local_big_wall < <(run_tasker localbig "$tmp/big.jobs" -j 4)
local_orig_name=localbig local_orig_wall=$local_big_wall
if ((orig != big)); then
  local_orig_name=localorig
  read -r _ local_orig_wall < <(run_tasker localorig "$tmp/orig.jobs" -j 4)
fi
read -r local_sleep _ < <(run_tasker localsleep "$tmp/sleep.jobs" -j 4)

mb() { calc "$1 / 1048576" 1; }
printf '\n%-58s %14s %10s\n' "measure" "value" "target"
printf '%-58s %14s\n' "(a) 2000 x true, ours: commands/s" "$ours_a"
printf '%-58s %14s\n' "    bare peer (RabbitMQ + sh -c, 4 consumers): commands/s" "$bare_a"
printf '%-58s %14s %10s\n' "    ours / bare" "$(calc "$ours_a / $bare_a" 2)x" ">= 1.0x"
printf '%-58s %14s %10s\n' "(b) 400 x sleep 0.05: % of ideal (5 s)" "$(calc "100 * 5 / $sleep_phase")%  (${sleep_phase}s)" ""
printf '%-58s %14s %10s\n' "    % of the bare 4-lane bash loop (${floor_b}s)" "$(calc "100 * $floor_b / $sleep_phase")%" ">= 97%"
printf '%-58s %14s\n' "    the loop with a log, a process group, a pid per sleep" "$(calc "100 * $floor_b / $needs_b")%  (${needs_b}s)"
printf '%-58s %14s\n' "    the executor alone (4 runners, no Node): % of the loop" "$(calc "100 * $floor_b / $runner_b")%  (${runner_b}s)"
printf '%-58s %14s\n' "    local -j 4: % of the loop" "$(calc "100 * $floor_b / $local_sleep")%  (${local_sleep}s)"
printf '%-58s %14s\n' "    ours: % of the executor alone" "$(calc "100 * $runner_b / $sleep_phase")%"
printf '%-58s %14s\n' "(c) $big x true: wall (phase)" "${big_wall}s (${big_phase}s)"
printf '%-58s %14s\n' "    commands/s" "$(calc "$big / $big_phase" 0)"
printf '%-58s %14s %10s\n' "    tasker peak RSS" "${big_rss} MB" "<= 200 MB"
printf '%-58s %14s\n' "    Redis used_memory before / peak / after (MB)" "$(mb "$mem_before") / $(mb "$mem_peak") / $(mb "$mem_after")"
printf '%-58s %14s %10s\n' "    Redis growth at peak" "$(mb $((mem_peak - mem_before))) MB" "<= 64 MB"
printf '%-58s %14s %10s\n' "    the run's keys after: bytes per command" "$(calc "$run_keys_bytes / $big" 2) ($run_keys_bytes B)" "<= 64"
printf '%-58s %14s %10s\n' "    Redis growth after: bytes per command" "$(calc "($mem_after - $mem_before) / $big" 2)" "<= 64"
printf '%-58s %14s\n' "(d) local -j 4, 2000 x true: commands/s" "$local_a"
printf '%-58s %14s %10s\n' "    distributed / local" "$(calc "$ours_a / $local_a" 2)x" ">= 0.9x"
printf '%-58s %14s\n' "    local -j 4, $big x true: commands/s" "$(calc "$big / $local_big" 0)"
printf '%-58s %14s %10s\n' "    distributed / local" "$(calc "$local_big / $big_phase" 2)x" ">= 0.9x"
if [[ $have_original == yes ]]; then
  printf '%-58s %14s %10s\n' "(e) the original pair (Python, pika, 4 workers): wall s" "ours s" "ours/orig"
  printf '%-58s %14s %10s\n' "    2000 x true, distributed: ${original_a}s ($(calc "2000 / $original_a" 0)/s)" "${ours_a_wall}s" "$(calc "$original_a / $ours_a_wall" 2)x"
  printf '%-58s %14s\n' "      beside it, ours / bare (a, phase time)" "$(calc "$ours_a / $bare_a" 2)x"
  printf '%-58s %14s %10s\n' "    400 x sleep 0.05, distributed: ${original_sleep}s" "${sleep_wall}s" "$(calc "$original_sleep / $sleep_wall" 2)x"
  printf '%-58s %14s %10s\n' "    $orig x true, distributed: ${original_big}s ($(calc "$orig / $original_big" 0)/s)" "${orig_wall}s" "$(calc "$original_big / $orig_wall" 2)x"
  printf '%-58s %14s %10s\n' "    $orig x true, local -j 4" "${local_orig_wall}s" "$(calc "$original_big / $local_orig_wall" 2)x"
  printf '%-58s %14s %10s\n' "    floor: the executor alone on it (4 runners, a log each)" "${runner_orig}s" "$(calc "$original_big / $runner_orig" 2)x"
  printf '%-58s %14s\n' "      ours as % of that floor: distributed, local" "$(calc "100 * $runner_orig / $orig_wall" 0)%, $(calc "100 * $runner_orig / $local_orig_wall" 0)%"
fi
printf '\n%-58s %14s %14s %9s  %s\n' "(f) fixed costs of ours, ms (target 500 each)" "start > 1st" "last > exit" "ramp loss" "cmd/s by quarter"
printf '%-58s %14s %14s\n' "    (start-up + run start > first; last > run end + exit)" "" ""
for name in true1 true2 sleep1 "$orig_name" local1 local2 "$local_orig_name"; do
  read -r to_first tail start_up run_to_first last_to_end end_to_exit ramp q1 q2 q3 q4 <"$tmp/$name.fixed"
  case $name in
    true1) label="2000 x true, fresh workers" ;; true2) label="2000 x true, warm workers" ;;
    sleep1) label="400 x sleep 0.05" ;; local1 | local2) label="2000 x true, local -j 4 ($name)" ;;
    localbig | localorig) label="$orig x true, local -j 4" ;; *) label="$orig x true" ;;
  esac
  printf '%-58s %14s %14s %9s  %s\n' "    $label" "$to_first ($start_up+$run_to_first)" "$tail ($last_to_end+$end_to_exit)" "$ramp" "$q1 $q2 $q3 $q4"
done
