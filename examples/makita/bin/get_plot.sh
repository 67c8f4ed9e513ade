#!/usr/bin/env bash
# Stand-in for makita's scripts/get_plot.py: draws the recall curves of every simulation in a
# state_files directory as one SVG. Needs only bash and coreutils.
#
#   get_plot.sh -s output/simulation/DATASET/state_files/ -o output/figures/plot_recall_sim_DATASET.svg
set -euo pipefail

die() { echo "get_plot: $*" >&2; exit 2; }
dir='' out=''
while (($# > 0)); do
  case $1 in
    -s) dir=${2:?}; shift 2 ;;
    -o) out=${2:?}; shift 2 ;;
    *) die "unknown option: $1" ;;
  esac
done
[[ -n $dir && -n $out ]] || die "usage: get_plot.sh -s STATE_DIR -o OUT.svg"

shopt -s nullglob
sims=("${dir%/}"/sim_*.json)
((${#sims[@]} > 0)) || die "no simulation files in $dir"

{
  echo '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300" viewBox="0 0 100 100">'
  for sim in "${sims[@]}"; do
    json=$(<"$sim")
    [[ $json =~ \"n_records\":([0-9]+) ]] || die "$sim: no n_records"
    records=${BASH_REMATCH[1]}
    [[ $json =~ \"found_at\":\[([0-9,]*)\] ]] || die "$sim: no found_at"
    IFS=, read -r -a found <<<"${BASH_REMATCH[1]}"
    points='0,100' hits=0
    for p in "${found[@]}"; do
      hits=$((hits + 1))
      points+=" $((p * 100 / records)),$((100 - hits * 100 / ${#found[@]}))"
    done
    echo "  <polyline fill=\"none\" stroke=\"black\" points=\"$points 100,0\"/>"
  done
  echo '</svg>'
} >"$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
