#!/usr/bin/env bash
# Installs everything (dev/install.sh), starts the local Kafka broker on 127.0.0.1:9092,
# creates callslo's topics, and runs the worker in the foreground (Ctrl-C stops it; the
# broker keeps running until `.venv/bin/callslo kafka stop`).
set -euo pipefail
cd "$(dirname "$0")/.."
dev/install.sh
.venv/bin/callslo kafka start
.venv/bin/callslo topics create
.venv/bin/callslo --help
echo
echo "Worker starting; send events to callcenter.events.v1 on 127.0.0.1:9092 (docs/contract.md)."
echo "Stop with Ctrl-C, then the broker with: .venv/bin/callslo kafka stop"
exec .venv/bin/callslo worker
