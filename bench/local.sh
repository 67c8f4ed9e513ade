#!/usr/bin/env bash
# Local benchmark of `tasker run` against GNU parallel and the original asreview-cloud pair, on this machine.
#
#   bash bench/local.sh                          # full run (the 1,000,000-line part takes ~15-30 min)
#   BENCH_MILLION_LINES=20000 bash bench/local.sh  # quick run
#   BENCH_ORIGINAL_LINES=5000 ...                # a shorter part 4 (default 20,000)
#
# Measures (prints figures, asserts nothing, exits 0):
#   1. 2000 x `true`        : tasker run -j 4 vs parallel -j 4, best and median of 3 (wall clock),
#                             commands/second, ratio tasker/parallel (target >= 2x);
#   2. 400 x `sleep 0.05`   : same, plus percent of the ideal 400*0.05/4 = 5.0 s, computed on the
#                             whole process wall time and on the phase duration the tasker records
#                             in summary.json (phases[0].durationMs, no Node start-up) (target >= 95%);
#   3. BENCH_MILLION_LINES x `true` (default 1000000): elapsed time, throughput and peak RSS of
#                             `tasker run -j 4`, and peak RSS of `tasker plan --json` (target <= 150 MB).
#   4. BENCH_ORIGINAL_LINES x `true` (default 20000): tasker run -j 4 against the original
#                             asreview-cloud pair (bench/original-pair: a Python tasker and 4 Python
#                             workers on RabbitMQ, AMQP_URL or guest@127.0.0.1:5672), once each,
#                             process wall times: ratio original/tasker (target >= 1.0x); and the
#                             floor beside them, the executor alone (bench/runner-floor.mjs: 4 bash
#                             runners, a log per command, no Node): original/floor, tasker as % of it.
# Every tasker run also gives its fixed costs (bench/fixed-costs.mjs): from the process's start to
# the first command started, and from the last command's end to the exit (target 500 ms each).
# Peak RSS is "Maximum resident set size" of /usr/bin/time -v, printed in MiB and compared with 150.
# Needs GNU parallel for the comparisons (skipped without it) and /usr/bin/time for peak RSS.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tasker_js="$repo/bin/tasker.js"
jobs=4
runs=3
true_lines=2000
sleep_lines=400
sleep_seconds=0.05
million=${BENCH_MILLION_LINES:-1000000}
original_lines=${BENCH_ORIGINAL_LINES:-20000}
rss_target_mb=150

if ! [[ $million =~ ^[1-9][0-9]*$ ]]; then
  echo "BENCH_MILLION_LINES must be a positive whole number, got '$million'" >&2
  exit 2
fi

# ---------------------------------------------------------------- helpers
now() { date +%s.%N; }
# calc EXPR [DECIMALS]: floating-point arithmetic through awk (bc is not always installed).
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
best() { printf '%s\n' "$@" | sort -g | awk 'NR == 1'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# meets VALUE OP TARGET -> yes/no
meets() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? (v >= t) : (v <= t); print ok ? "yes" : "no" }'; }
say() { printf '%s\n' "$*"; }

# ---------------------------------------------------------------- prerequisites
if [[ ! -f $repo/dist/tasker/main.js ]]; then
  say "dist/ is missing: building the tasker first"
  if [[ ! -d $repo/node_modules ]]; then (cd "$repo" && npm ci); fi
  (cd "$repo" && npm run build)
fi

have_parallel=yes
if ! command -v parallel >/dev/null 2>&1; then
  have_parallel=no
  say "GNU parallel is not installed: the comparisons with it are SKIPPED (tasker figures are still measured)."
  say "  install it with:  sudo apt-get install parallel   (Debian/Ubuntu package 'parallel')"
elif ! parallel --version 2>/dev/null | head -n 1 | grep -q 'GNU parallel'; then
  have_parallel=no
  say "'parallel' on PATH is not GNU parallel (moreutils?): the comparisons are SKIPPED."
  say "  install GNU parallel with:  sudo apt-get install parallel"
fi

have_time=yes
if [[ ! -x /usr/bin/time ]] || ! /usr/bin/time -v true >/dev/null 2>&1; then
  have_time=no
  say "/usr/bin/time (GNU time) is missing: the peak RSS measures are SKIPPED; install it with: sudo apt-get install time"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tasker-bench.XXXXXX")
ORIGINAL_DIR=$tmp/original
mkdir -p "$ORIGINAL_DIR"
# The pair's broker only: our runs here are local (run_tasker clears AMQP_URL for them).
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}
# shellcheck source=bench/original-pair/pair.sh
source "$repo/bench/original-pair/pair.sh"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { original_cleanup; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

say "tasker local benchmark: $(nproc) CPUs, node $(node --version), -j $jobs, best/median of $runs runs"
[[ $have_parallel == yes ]] && say "  $(parallel --version | head -n 1)"
say "  temp dir: $tmp"
say "  load average at start: $(cut -d" " -f1-3 /proc/loadavg 2>/dev/null || echo n/a) (other work on this machine skews the figures)"

# ---------------------------------------------------------------- inputs
awk -v n="$true_lines" 'BEGIN { for (i = 0; i < n; i++) print "true" }' >"$tmp/true.jobs"
awk -v n="$sleep_lines" -v s="$sleep_seconds" 'BEGIN { for (i = 0; i < n; i++) print "sleep " s }' >"$tmp/sleep.jobs"

# ---------------------------------------------------------------- runners
# run_tasker FILE [WRAPPER...]: one `tasker run` in a fresh workdir.
# Sets WALL (s), PHASE_MS (phases[0].durationMs), RC, and FIXED: "TO_FIRST_MS TAIL_MS ..." (fixed-costs.mjs).
run_tasker() {
  local file=$1 wd start end
  shift
  wd=$(mktemp -d "$tmp/workdir.XXXXXX")
  RC=0
  start=$(date +%s%N)
  AMQP_URL='' "$@" "$tasker_js" run -j "$jobs" --workdir "$wd" --run-id bench --log-level warn "$file" \
    >"$tmp/tasker.out" 2>"$tmp/tasker.err" || RC=$?
  end=$(date +%s%N)
  WALL=$(calc "($end - $start) / 1e9")
  FIXED=$(node "$repo/bench/fixed-costs.mjs" "$wd/.tasker/runs/bench" "$start" "$end" 2>/dev/null || echo "nan nan nan nan nan nan nan nan nan nan nan")
  PHASE_MS=$(node -e 'const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); process.stdout.write(String(s.phases[0].durationMs))' \
    "$wd/.tasker/runs/bench/summary.json" 2>/dev/null || echo nan)
  if [[ $RC -ne 0 ]]; then
    say "  warning: tasker exited $RC on $(basename "$file"); its last output:"
    tail -n 5 "$tmp/tasker.out" "$tmp/tasker.err" | sed 's/^/    /'
  fi
  rm -rf "$wd"
}

# run_parallel FILE: sets WALL (s) and RC.
run_parallel() {
  local file=$1 start end
  RC=0
  start=$(now)
  parallel -j "$jobs" <"$file" >/dev/null 2>"$tmp/parallel.err" || RC=$?
  end=$(now)
  WALL=$(calc "$end - $start")
  [[ $RC -eq 0 ]] || say "  warning: parallel exited $RC on $(basename "$file")"
}

# bench_file NAME FILE: 3 runs of each; sets T_BEST T_MED T_PHASE_BEST T_PHASE_MED P_BEST P_MED.
bench_file() {
  local name=$1 file=$2 i
  local -a tw=() tp=() pw=()
  for ((i = 1; i <= runs; i++)); do
    run_tasker "$file"
    tw+=("$WALL")
    tp+=("$(ms_to_s "$PHASE_MS")")
    read -r to_first tail _ <<<"$FIXED"
    say "  $name  tasker   run $i: ${WALL}s (phase ${PHASE_MS} ms; start to first command ${to_first} ms, last end to exit ${tail} ms)"
  done
  T_BEST=$(best "${tw[@]}") T_MED=$(median "${tw[@]}")
  T_PHASE_BEST=$(best "${tp[@]}") T_PHASE_MED=$(median "${tp[@]}")
  P_BEST=nan P_MED=nan
  if [[ $have_parallel == yes ]]; then
    for ((i = 1; i <= runs; i++)); do
      run_parallel "$file"
      pw+=("$WALL")
      say "  $name  parallel run $i: ${WALL}s"
    done
    P_BEST=$(best "${pw[@]}") P_MED=$(median "${pw[@]}")
  fi
}

# ms_to_s MS -> seconds (nan stays nan)
ms_to_s() { if [[ $1 == nan ]]; then echo nan; else calc "$1 / 1000"; fi; }
# rate COUNT SECONDS -> commands per second
rate() { if [[ $2 == nan ]]; then echo n/a; else calc "$1 / $2" 0; fi; }
# or_na VALUE [SUFFIX]
or_na() { if [[ $1 == nan ]]; then echo n/a; else echo "$1${2:-}"; fi; }

# ---------------------------------------------------------------- 1. true x 2000
say ""
say "== 1. $true_lines x true, -j $jobs"
bench_file true "$tmp/true.jobs"
true_t_best=$T_BEST true_t_med=$T_MED true_p_best=$P_BEST true_p_med=$P_MED
true_ratio_best=nan true_ratio_med=nan
if [[ $have_parallel == yes ]]; then
  true_ratio_best=$(calc "$true_p_best / $true_t_best" 2)
  true_ratio_med=$(calc "$true_p_med / $true_t_med" 2)
fi
say "  tasker:   best ${true_t_best}s ($(rate $true_lines "$true_t_best") cmd/s), median ${true_t_med}s ($(rate $true_lines "$true_t_med") cmd/s)"
[[ $have_parallel == no ]] || say "  parallel: best $(or_na "$true_p_best" s) ($(rate $true_lines "$true_p_best") cmd/s), median $(or_na "$true_p_med" s) ($(rate $true_lines "$true_p_med") cmd/s)"
[[ $have_parallel == no ]] || say "  ratio tasker/parallel (throughput): best $(or_na "$true_ratio_best" x), median $(or_na "$true_ratio_med" x)"

# ---------------------------------------------------------------- 2. sleep 0.05 x 400
ideal=$(calc "$sleep_lines * $sleep_seconds / $jobs")
say ""
say "== 2. $sleep_lines x sleep $sleep_seconds, -j $jobs (ideal ${ideal}s)"
bench_file sleep "$tmp/sleep.jobs"
sleep_t_best=$T_BEST sleep_t_med=$T_MED sleep_p_best=$P_BEST sleep_p_med=$P_MED
sleep_phase_best=$T_PHASE_BEST sleep_phase_med=$T_PHASE_MED
pct() { if [[ $1 == nan ]]; then echo nan; else calc "100 * $ideal / $1" 1; fi; }
sleep_t_pct_best=$(pct "$sleep_t_best") sleep_t_pct_med=$(pct "$sleep_t_med")
sleep_phase_pct_best=$(pct "$sleep_phase_best") sleep_phase_pct_med=$(pct "$sleep_phase_med")
sleep_p_pct_best=$(pct "$sleep_p_best") sleep_p_pct_med=$(pct "$sleep_p_med")
say "  tasker process: best ${sleep_t_best}s = ${sleep_t_pct_best}% of ideal, median ${sleep_t_med}s = ${sleep_t_pct_med}%"
say "  tasker phase:   best ${sleep_phase_best}s = ${sleep_phase_pct_best}% of ideal, median ${sleep_phase_med}s = ${sleep_phase_pct_med}%"
[[ $have_parallel == no ]] || say "  parallel:       best $(or_na "$sleep_p_best" s) = $(or_na "$sleep_p_pct_best" %) of ideal, median $(or_na "$sleep_p_med" s) = $(or_na "$sleep_p_pct_med" %)"
say "  throughput: tasker $(rate $sleep_lines "$sleep_t_best") cmd/s, parallel $(rate $sleep_lines "$sleep_p_best") cmd/s (best)"

# ---------------------------------------------------------------- 3. a million lines: memory
say ""
say "== 3. $million x true, -j $jobs: elapsed, throughput, peak RSS (this can take a while: ~1000 cmd/s at best)"
awk -v n="$million" 'BEGIN { for (i = 0; i < n; i++) print "true" }' >"$tmp/million.jobs"
say "  jobs file: $(du -h "$tmp/million.jobs" | cut -f1)"
maxrss_mb() { awk -F': *' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"; }
if [[ $have_time == yes ]]; then
  run_tasker "$tmp/million.jobs" /usr/bin/time -v -o "$tmp/run.time"
  run_rss=$(maxrss_mb "$tmp/run.time")
else
  run_tasker "$tmp/million.jobs"
  run_rss=nan
fi
million_wall=$WALL million_phase=$(ms_to_s "$PHASE_MS")
million_rate=$(rate "$million" "$million_wall") million_phase_rate=$(rate "$million" "$million_phase")
say "  tasker run: ${million_wall}s wall (${million_rate} cmd/s), phase ${million_phase}s (${million_phase_rate} cmd/s), peak RSS $(or_na "$run_rss" " MiB")"

plan_rss=nan
if [[ $have_time == yes ]]; then
  plan_rc=0
  start=$(now)
  /usr/bin/time -v -o "$tmp/plan.time" "$tasker_js" plan --json "$tmp/million.jobs" >/dev/null 2>"$tmp/plan.err" || plan_rc=$?
  end=$(now)
  plan_rss=$(maxrss_mb "$tmp/plan.time")
  [[ $plan_rc -eq 0 ]] || say "  warning: tasker plan exited $plan_rc: $(tail -n 3 "$tmp/plan.err")"
  say "  tasker plan --json: $(calc "$end - $start")s, peak RSS ${plan_rss} MiB"
fi
rm -f "$tmp/million.jobs"

# ---------------------------------------------------------------- 4. the original pair
say ""
say "== 4. $original_lines x true: tasker run -j $jobs against the original asreview-cloud pair (4 workers, RabbitMQ)"
awk -v n="$original_lines" 'BEGIN { for (i = 0; i < n; i++) print "true" }' >"$tmp/original.jobs"
original_wall=nan original_ratio=nan
run_tasker "$tmp/original.jobs"
ours_original_wall=$WALL ours_original_fixed=$FIXED
say "  tasker run -j $jobs: ${WALL}s ($(rate "$original_lines" "$WALL") cmd/s), phase ${PHASE_MS} ms"
if original_ready; then
  original_start_workers "$jobs"
  if original_wall=$(original_run "$tmp/original.jobs"); then
    original_ratio=$(calc "$original_wall / $ours_original_wall" 2)
    say "  original pair:     ${original_wall}s ($(rate "$original_lines" "$original_wall") cmd/s)"
    say "  ratio tasker/original (throughput): ${original_ratio}x"
  else
    original_wall=nan
  fi
  original_stop_workers
else
  say "  python3-pika is missing and could not be installed (apt-get install python3-pika): the original pair is SKIPPED"
fi
# The floor beside it: the executor alone (4 bash runners handed every request up front, a log per
# command, no Node at all: bench/runner-floor.mjs), the most any executor of ours reaches here.
floor_out=$(node "$repo/bench/runner-floor.mjs" "$jobs" "$tmp/original.jobs" "$tmp/runner-floor")
floor_wall=${floor_out#* }
floor_ratio=nan
[[ $original_wall != nan ]] && floor_ratio=$(calc "$original_wall / $floor_wall" 2)
say "  floor, the executor alone (4 runners, a log per command, no Node): ${floor_wall}s; tasker run at $(calc "100 * $floor_wall / $ours_original_wall" 0)% of it"
read -r of_first of_tail of_startup of_run_first of_last_end of_end_exit of_ramp of_q1 of_q2 of_q3 of_q4 <<<"$ours_original_fixed"
say "  fixed costs of the tasker run: start to first command ${of_first} ms (Node start-up ${of_startup} + run start to first ${of_run_first}), last end to exit ${of_tail} ms (to run end ${of_last_end} + to exit ${of_end_exit}), ramp loss ${of_ramp} ms; cmd/s by quarter ${of_q1} ${of_q2} ${of_q3} ${of_q4}"

# ---------------------------------------------------------------- table
row() { printf '%-44s | %-15s | %-15s | %-13s | %-9s | %s\n' "$@"; }
met_or_na() { if [[ $1 == nan ]]; then echo n/a; else meets "$1" "$2" "$3"; fi; }
say ""
say "== Summary (-j $jobs, $(nproc) CPUs; best of $runs unless 'median'; cmd/s from process wall time)"
row "measure" "tasker" "parallel" "ratio/percent" "target" "met"
row "--------------------------------------------" "---------------" "---------------" "-------------" "---------" "---"
row "true x$true_lines: wall, best" "${true_t_best}s" "$(or_na "$true_p_best" s)" "" "" ""
row "true x$true_lines: wall, median" "${true_t_med}s" "$(or_na "$true_p_med" s)" "" "" ""
row "true x$true_lines: cmd/s, best (ratio t/p)" "$(rate $true_lines "$true_t_best")" "$(rate $true_lines "$true_p_best")" "$(or_na "$true_ratio_best" x)" ">= 2x" "$(met_or_na "$true_ratio_best" ">=" 2)"
row "true x$true_lines: cmd/s, median (ratio t/p)" "$(rate $true_lines "$true_t_med")" "$(rate $true_lines "$true_p_med")" "$(or_na "$true_ratio_med" x)" ">= 2x" "$(met_or_na "$true_ratio_med" ">=" 2)"
row "sleep x$sleep_lines: wall, best" "${sleep_t_best}s" "$(or_na "$sleep_p_best" s)" "" "" ""
row "sleep x$sleep_lines: wall, median" "${sleep_t_med}s" "$(or_na "$sleep_p_med" s)" "" "" ""
row "sleep x$sleep_lines: cmd/s, best" "$(rate $sleep_lines "$sleep_t_best")" "$(rate $sleep_lines "$sleep_p_best")" "" "" ""
row "sleep: % of ideal ${ideal}s, process, best" "${sleep_t_pct_best}%" "$(or_na "$sleep_p_pct_best" %)" "${sleep_t_pct_best}%" ">= 95%" "$(meets "$sleep_t_pct_best" ">=" 95)"
row "sleep: % of ideal, process, median" "${sleep_t_pct_med}%" "$(or_na "$sleep_p_pct_med" %)" "${sleep_t_pct_med}%" ">= 95%" "$(meets "$sleep_t_pct_med" ">=" 95)"
row "sleep: % of ideal, phase durationMs, best" "${sleep_phase_best}s" "n/a" "${sleep_phase_pct_best}%" ">= 95%" "$(met_or_na "$sleep_phase_pct_best" ">=" 95)"
row "sleep: % of ideal, phase durationMs, median" "${sleep_phase_med}s" "n/a" "${sleep_phase_pct_med}%" ">= 95%" "$(met_or_na "$sleep_phase_pct_med" ">=" 95)"
row "true x$million: run wall" "${million_wall}s" "n/a" "" "" ""
row "true x$million: run cmd/s (phase cmd/s)" "$million_rate ($million_phase_rate)" "n/a" "" "" ""
row "true x$million: run peak RSS" "$(or_na "$run_rss" " MiB")" "n/a" "" "<= $rss_target_mb MB" "$(met_or_na "$run_rss" "<=" $rss_target_mb)"
row "true x$million: plan --json peak RSS" "$(or_na "$plan_rss" " MiB")" "n/a" "" "<= $rss_target_mb MB" "$(met_or_na "$plan_rss" "<=" $rss_target_mb)"
row "measure" "tasker" "original pair" "ratio" "target" "met"
row "true x$original_lines: wall (ratio o/t)" "${ours_original_wall}s" "$(or_na "$original_wall" s)" "$(or_na "$original_ratio" x)" ">= 1.0x" "$(met_or_na "$original_ratio" ">=" 1)"
row "true x$original_lines: floor, executor alone" "$(calc "100 * $floor_wall / $ours_original_wall" 0)% of it" "${floor_wall}s" "$(or_na "$floor_ratio" x)" "" ""
row "true x$original_lines: start to first command" "${of_first} ms" "" "" "<= 500 ms" "$(met_or_na "$of_first" "<=" 500)"
row "true x$original_lines: last end to exit" "${of_tail} ms" "" "" "<= 500 ms" "$(met_or_na "$of_tail" "<=" 500)"
say "load average at end: $(cut -d" " -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
[[ $have_parallel == yes ]] || say "(GNU parallel missing: comparison columns are n/a; install with: sudo apt-get install parallel)"
exit 0
