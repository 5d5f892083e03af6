#!/usr/bin/env bash
# The main job on an embedded default: installs what is missing (dev/install.sh), starts the
# local Kafka broker on 127.0.0.1:9092, creates the topics, runs the worker, feeds it one day
# of the built-in contact center (two tenants, several queues) from the simulator, and prints
# the final interval records as the engine publishes them. Ctrl-C stops the worker and the
# printing; the broker keeps its data until `.venv/bin/callslo kafka stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
dev/install.sh
callslo=.venv/bin/callslo

$callslo kafka start
$callslo topics create
mkdir -p artifacts
log=artifacts/demo-worker.log
$callslo worker > "$log" 2>&1 &
worker=$!
stop_worker() { kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true; }
trap stop_worker EXIT
echo "worker running (pid $worker, log $log); simulating yesterday's traffic ..."
$callslo simulate --days 1 --seed 1 --topic
echo "interval records (the last intervals close once the partitions have been quiet for"
echo "engine.idle_close_s, 60 s by default); Ctrl-C to stop:"
$callslo records --follow || true
