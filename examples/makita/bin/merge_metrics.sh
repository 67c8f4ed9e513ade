#!/usr/bin/env bash
# Stand-in for makita's scripts/merge_metrics.py: one CSV row per simulation from
# output/simulation/*/metrics/metrics_sim_*.json. Needs only bash and coreutils.
#
#   merge_metrics.sh [-o output/tables/metrics.csv]
#
# With `tasker run --split makita`, this line lands in the "aggregate" phase together with the
# `metrics` lines it reads, and that phase runs its commands in parallel: this script can start
# while the last metrics are still being written. So it first waits (up to
# MERGE_WAIT_SECONDS, default 60) until every simulation in output/simulation/*/state_files/
# has its metrics file. makita's real merge_metrics.py does not wait.
set -euo pipefail

out=output/tables/metrics.csv
[[ ${1:-} == -o ]] && out=${2:?}
shopt -s nullglob

missing_metrics() {
  local sim dataset_dir
  MISSING=()
  for sim in output/simulation/*/state_files/sim_*.json; do
    dataset_dir=${sim%/state_files/*}
    [[ -f $dataset_dir/metrics/metrics_${sim##*/} ]] || MISSING+=("$dataset_dir/metrics/metrics_${sim##*/}")
  done
}

wait_limit=$((${MERGE_WAIT_SECONDS:-60} * 10)) waited=0
missing_metrics
while ((${#MISSING[@]} > 0 && waited < wait_limit)); do
  ((waited == 0)) && echo "merge_metrics: waiting for ${#MISSING[@]} metrics file(s) still being written, e.g. ${MISSING[0]}" >&2
  sleep 0.1
  waited=$((waited + 1))
  missing_metrics
done
((waited == 0)) || echo "merge_metrics: waited $((waited / 10)).$((waited % 10)) s for metrics files" >&2
((${#MISSING[@]} == 0)) || echo "merge_metrics: warning: ${#MISSING[@]} metrics file(s) never appeared, e.g. ${MISSING[0]}" >&2

files=(output/simulation/*/metrics/metrics_sim_*.json)
((${#files[@]} > 0)) || { echo "merge_metrics: no output/simulation/*/metrics/metrics_sim_*.json" >&2; exit 2; }

field() { [[ $1 =~ \"$2\":\"?([^\",}]*) ]] && echo "${BASH_REMATCH[1]}"; }
{
  echo "dataset,simulation,recall_10,recall_25,recall_50,atd"
  for file in "${files[@]}"; do
    json=$(<"$file")
    echo "$(field "$json" dataset),$(field "$json" simulation),$(field "$json" recall_10),$(field "$json" recall_25),$(field "$json" recall_50),$(field "$json" atd)"
  done
} >"$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
echo "merge_metrics: ${#files[@]} simulations -> $out"
