#!/usr/bin/env bash
# Stand-in for makita's scripts/merge_descriptives.py: one CSV row per dataset from
# output/simulation/*/descriptives/data_stats_*.json. Needs only bash and coreutils.
#
#   merge_descriptives.sh [-o output/tables/data_descriptives.csv]
set -euo pipefail

out=output/tables/data_descriptives.csv
[[ ${1:-} == -o ]] && out=${2:?}
shopt -s nullglob
files=(output/simulation/*/descriptives/data_stats_*.json)
((${#files[@]} > 0)) || { echo "merge_descriptives: no output/simulation/*/descriptives/data_stats_*.json" >&2; exit 2; }

field() { [[ $1 =~ \"$2\":\"?([^\",}]*) ]] && echo "${BASH_REMATCH[1]}"; }
{
  echo "dataset,n_records,n_included,n_excluded,included_share"
  for file in "${files[@]}"; do
    json=$(<"$file")
    echo "$(field "$json" dataset),$(field "$json" n_records),$(field "$json" n_included),$(field "$json" n_excluded),$(field "$json" included_share)"
  done
} >"$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
echo "merge_descriptives: ${#files[@]} datasets -> $out"
