# shellcheck shell=bash
# tests/bench/bench-lib.sh — what tests/bench/compare and compare-cluster share:
# the pubsub-bench binary, stopping the servers of a run, one measured run
# into $RESULTS, warm-ups, the one-line summary, and the table (bench-table.py).
# Sourced, not run. SPDX-License-Identifier: MIT
#
# The sourcing script sets before calling these: ROOT, PEERS_DIR, BENCH, WORK,
# RESULTS, TOOL_CORE, WARMUP, DURATION, and per server started:
#   CUR_PIDS      every process of the server under test (stopped by bench_stop)
#   CUR_PID       the one process whose CPU and memory pubsub-bench reports
#                 (--pid), or empty
#   CUR_PROTO     pubsub or nats
#   CUR_URL       the publishers' WebSocket URL
#   CUR_SUB_ARGS  array: extra pubsub-bench options for the subscribers
#                 (--sub-url ..., empty for a single server)

BENCH_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The warm-up publishes on topics of its own, so that the measured topics
# start empty: nothing of the warm-up in their history, and no id the server
# could take a measured publish for a retry of (SPEC §8, idempotent publish;
# pubsub-bench's ids are also random per run).
WARM_PREFIX=cmpwarm

CUR_PIDS=""
CUR_PID=""
CUR_SUB_ARGS=()

# bench_ensure_tool NAME: compiles pubsub-bench into $WORK when $BENCH is not built
bench_ensure_tool() {
  [ -x "$BENCH" ] && return 0
  echo "$1: $BENCH not built; compiling tools/*.c into $WORK" >&2
  # shellcheck disable=SC2046
  cc -std=c11 -O2 -Wall -Wextra -o "$WORK/pubsub-bench" "$ROOT/tools/pubsub-bench.c" \
    "$ROOT"/tools/bench-*.c $(pkg-config --cflags --libs glib-2.0) -lm
  BENCH="$WORK/pubsub-bench"
}

# bench_stop: stops every process of the current server, in the order given
bench_stop() {
  local pid
  for pid in $CUR_PIDS; do
    "$PEERS_DIR/stop.sh" "$pid" 5 >/dev/null 2>&1 || true
  done
  CUR_PIDS=""
  CUR_PID=""
  CUR_SUB_ARGS=()
}

# bench_tool ARGS...: pubsub-bench on TOOL_CORE against the current server
bench_tool() {
  taskset -c "$TOOL_CORE" "$BENCH" --protocol "$CUR_PROTO" --url "$CUR_URL" \
    ${CUR_SUB_ARGS[@]+"${CUR_SUB_ARGS[@]}"} "$@"
}

# bench_warmup ARGS...: an unrecorded run of WARMUP seconds on topics of its own
bench_warmup() {
  [ "$WARMUP" != 0 ] || return 0
  bench_tool --topic-prefix "$WARM_PREFIX" "$@" -d "$WARMUP" >/dev/null 2>&1 || true
}

# run_point SERVER POINT REP ARGS...: one measured run, appended to $RESULTS
run_point() {
  local server="$1" point="$2" rep="$3" rc=0 out err
  shift 3
  err="$WORK/$server-$point-$rep.err"
  out="$(bench_tool ${CUR_PID:+--pid "$CUR_PID"} --topic-prefix cmp --json "$@" 2>"$err")" || rc=$?
  [ -n "$out" ] || out=null
  printf '{"server":"%s","point":"%s","rep":%d,"rc":%d,"result":%s}\n' \
    "$server" "$point" "$rep" "$rc" "$out" >>"$RESULTS"
  if [ "$rc" != 0 ]; then
    echo "${BENCH_NAME:-bench}: $server $point round $rep: pubsub-bench exit $rc: $(tail -n 3 "$err" | tr '\n' ' ')" >&2
  fi
  printf '  %-15s %-14s round %d: %s\n' "$server" "$point" "$rep" "$(summary_of "$out")" >&2
}

# run_failed SERVER POINT REP: records a run whose server did not start
run_failed() {
  printf '{"server":"%s","point":"%s","rep":%d,"rc":2,"result":null}\n' "$1" "$2" "$3" >>"$RESULTS"
}

# run_windowed SERVER POINT REP SUBS PUBS TOPICS SIZE WINDOW [ARGS...]: a warm-up
# (if any) and one measured run with a window of unacknowledged publishes
run_windowed() {
  local server="$1" point="$2" rep="$3" subs="$4" pubs="$5" topics="$6" size="$7" window="$8"
  shift 8
  bench_warmup -s "$subs" -p "$pubs" -t "$topics" -b "$size" -w "$window" "$@"
  run_point "$server" "$point" "$rep" -s "$subs" -p "$pubs" -t "$topics" -b "$size" -w "$window" \
    -d "$DURATION" "$@"
}

summary_of() {
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
if not d: print("no result"); sys.exit()
if d["mode"] == "idle":
    print("%.2f KiB/conn (%d conns)" % (d["rss_per_conn_kib"], d["connections"]))
else:
    l = d["latency_us"]
    nodes = "".join(", node %d lost %d" % (i, n["lost"]) for i, n in enumerate(d.get("sub_nodes", [])) if n["lost"])
    print("%.0f events/s, p50 %.0f us, p99 %.0f us, lost %d%s, tool %.0f%%, server %.0f%%" % (
        d["events_per_s"], l["p50"], l["p99"], d["lost"], nodes, d["tool_cpu_pct"], d.get("server_cpu_pct", -1)))
' "$1"
}

# bench_table ARGS...: the table of medians (see bench-table.py --help)
bench_table() {
  python3 "$BENCH_LIB_DIR/bench-table.py" "$@"
}
