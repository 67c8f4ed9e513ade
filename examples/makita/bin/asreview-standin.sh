#!/usr/bin/env bash
# A tiny, portable stand-in for the `asreview` commands of an ASReview makita jobs.sh.
# Needs only bash and coreutils (no Python). Paths are relative to the current directory
# (the tasker's workdir). Every output file is written to a temporary name and renamed into
# place, so a reader never sees half a file.
#
#   asreview-standin.sh data describe DATA.csv -o OUT.json
#   asreview-standin.sh wordcloud DATA.csv -o OUT.svg
#   asreview-standin.sh simulate DATA.csv -s OUT.json [--init_seed N] [--seed N]
#   asreview-standin.sh metrics SIM.json -o OUT.json
set -euo pipefail

die() { echo "asreview-standin: $*" >&2; exit 2; }

# write_atomically OUT: stdin -> OUT, via a temporary file in the same directory.
write_atomically() {
  local out=$1 tmp
  [[ -d $(dirname "$out") ]] || die "output directory $(dirname "$out") does not exist (missing mkdir line?)"
  tmp="$out.tmp.$$"
  cat >"$tmp"
  mv -f "$tmp" "$out"
}

# ratio NUM DEN -> decimal with 3 digits, integer arithmetic only
ratio() { local v=$(($1 * 1000 / $2)); printf '%d.%03d' $((v / 1000)) $((v % 1000)); }

# count_records DATA.csv -> sets RECORDS and INCLUDED (last column is label_included)
count_records() {
  local line first=1
  RECORDS=0 INCLUDED=0
  [[ -f $1 ]] || die "no such dataset: $1"
  while IFS= read -r line || [[ -n $line ]]; do
    if ((first)); then first=0; continue; fi
    [[ -n $line ]] || continue
    RECORDS=$((RECORDS + 1))
    [[ $line == *,1 ]] && INCLUDED=$((INCLUDED + 1))
  done <"$1"
  ((INCLUDED > 0)) || die "$1 has no included records"
}

dataset_name() { local base=${1##*/}; echo "${base%.*}"; }

cmd=${1:-}
[[ -n $cmd ]] || die "usage: asreview-standin.sh {data describe|wordcloud|simulate|metrics} ..."
shift
[[ $cmd == data ]] && { [[ ${1:-} == describe ]] || die "only 'data describe' is supported"; cmd=describe; shift; }

input=${1:-}
[[ -n $input ]] || die "$cmd: missing input file"
shift
out='' seed=0 init_seed=0
while (($# > 0)); do
  case $1 in
    -o | -s | --output | --state_file) out=${2:?}; shift 2 ;;
    --seed) seed=${2:?}; shift 2 ;;
    --init_seed) init_seed=${2:?}; shift 2 ;;
    *) shift ;; # other asreview options (--width, --model, ...) are accepted and ignored
  esac
done
[[ -n $out ]] || die "$cmd: missing -o/-s OUTPUT"

case $cmd in
  describe)
    count_records "$input"
    printf '{"dataset":"%s","n_records":%d,"n_included":%d,"n_excluded":%d,"included_share":%s}\n' \
      "$(dataset_name "$input")" "$RECORDS" "$INCLUDED" $((RECORDS - INCLUDED)) "$(ratio "$INCLUDED" "$RECORDS")" |
      write_atomically "$out"
    ;;
  wordcloud)
    count_records "$input"
    printf '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="60"><text x="10" y="35">wordcloud of %s: %d records</text></svg>\n' \
      "$(dataset_name "$input")" "$RECORDS" | write_atomically "$out"
    ;;
  simulate)
    count_records "$input"
    sleep "0.$((3 + seed % 3))" # 0.3-0.5 s: "the model screens the records"
    # Where each relevant record was found, in screening order: a seeded random walk.
    RANDOM=$((seed * 1000 + init_seed))
    gap=$((RECORDS / INCLUDED))
    pos=0 found=''
    for ((i = 0; i < INCLUDED; i++)); do
      pos=$((pos + 1 + RANDOM % gap))
      found+="${found:+,}$pos"
    done
    printf '{"dataset":"%s","init_seed":%d,"seed":%d,"n_records":%d,"n_included":%d,"found_at":[%s]}\n' \
      "$(dataset_name "$input")" "$init_seed" "$seed" "$RECORDS" "$INCLUDED" "$found" | write_atomically "$out"
    ;;
  metrics)
    [[ -f $input ]] || die "no such simulation file: $input (did its simulate line run?)"
    sim=$(<"$input")
    [[ $sim =~ \"dataset\":\"([^\"]*)\" ]] || die "$input: no dataset"
    dataset=${BASH_REMATCH[1]}
    [[ $sim =~ \"n_records\":([0-9]+) ]] || die "$input: no n_records"
    records=${BASH_REMATCH[1]}
    [[ $sim =~ \"found_at\":\[([0-9,]*)\] ]] || die "$input: no found_at"
    IFS=, read -r -a found <<<"${BASH_REMATCH[1]}"
    sleep 0.2
    recall_at() { # recall after screening PERCENT % of the records
      local limit=$((records * $1 / 100)) hits=0 p
      for p in "${found[@]}"; do ((p <= limit)) && hits=$((hits + 1)); done
      ratio "$hits" "${#found[@]}"
    }
    sum=0
    for p in "${found[@]}"; do sum=$((sum + p)); done
    printf '{"dataset":"%s","simulation":"%s","recall_10":%s,"recall_25":%s,"recall_50":%s,"atd":%s}\n' \
      "$dataset" "${input##*/}" "$(recall_at 10)" "$(recall_at 25)" "$(recall_at 50)" "$(ratio "$sum" "${#found[@]}")" |
      write_atomically "$out"
    ;;
  *) die "unknown command: $cmd" ;;
esac
