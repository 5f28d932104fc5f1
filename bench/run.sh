#!/bin/sh
# The fleet scenario runs thousands of simulated devices in one process, two file descriptors each
# (TLS socket, queue log): raise the open-file limit where allowed, then run the harness.
ulimit -n 65536 2>/dev/null || true
exec node --import tsx "$(dirname "$0")/run.ts" "$@"
