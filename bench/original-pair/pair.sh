# The original asreview-cloud pair (tasker.py, worker.py here) for bench/distributed.sh and
# bench/local.sh: sourced, never run. The caller sets AMQP_URL and ORIGINAL_DIR (a temporary
# directory for the pair's output) and calls original_cleanup on exit.
#
#   original_ready                 # 0 when pika is there (installed from Debian's packages if not)
#   original_start_workers N       # N workers on this run's queue, started once it exists
#   original_run JOBS_FILE         # wall seconds of the tasker process, publish to last reply
#   original_stop_workers; original_cleanup   # the run's two queues are deleted
original_python=/usr/bin/python3 # Debian's, the one python3-pika installs for
original_code=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
original_pids=()
# A queue pair of this run's own: other benches and tests share the broker.
export ORIGINAL_WORK_QUEUE=original$$ ORIGINAL_REPLY_QUEUE=original$$.tasker
# As the images ran them (ENV PYTHONUNBUFFERED=1 in their Dockerfiles): every print a write.
export PYTHONUNBUFFERED=1
if [[ ${AMQP_URL:-} =~ ^amqps?://([^:@/]+):([^@/]+)@([^:/]+)(:([0-9]+))? ]]; then
  export RABBITMQ_USER=${BASH_REMATCH[1]} RABBITMQ_PASS=${BASH_REMATCH[2]} RABBITMQ_HOST=${BASH_REMATCH[3]} RABBITMQ_PORT=${BASH_REMATCH[5]:-5672}
fi

original_ready() {
  "$original_python" -c 'import pika' 2>/dev/null && return 0
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    echo "installing python3-pika (Debian) for the original pair" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-pika >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-pika >/dev/null 2>&1; } || true
  fi
  "$original_python" -c 'import pika' 2>/dev/null
}

original_start_workers() {
  local i
  for ((i = 1; i <= $1; i++)); do
    "$original_python" "$original_code/worker.py" >"$ORIGINAL_DIR/worker$i.log" 2>&1 &
    original_pids+=($!)
  done
  sleep 1.5 # connected and consuming, as the pods were before the tasker's job started
}

original_stop_workers() {
  local pid
  for pid in "${original_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${original_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  original_pids=()
}

original_run() {
  local start end
  start=$(date +%s.%N)
  "$original_python" "$original_code/tasker.py" "$1" >"$ORIGINAL_DIR/tasker.log" 2>&1 || { echo "original tasker failed:" >&2; tail -n 5 "$ORIGINAL_DIR/tasker.log" >&2; return 1; }
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }'
}

original_cleanup() {
  original_stop_workers
  # The pair's own connection (connection.py), to delete this run's two queues.
  (cd "$original_code" && "$original_python" -c 'from connection import REPLY_QUEUE, WORK_QUEUE, connect
c = connect(); ch = c.channel(); ch.queue_delete(queue=WORK_QUEUE); ch.queue_delete(queue=REPLY_QUEUE); c.close()' >/dev/null 2>&1) || true
}
