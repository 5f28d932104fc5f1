#!/bin/sh
# The fleet scenario runs thousands of simulated devices in one process, two file descriptors each
# (TLS socket, queue log): raise the open-file limit where allowed, then run the harness.
ulimit -n 65536 2>/dev/null || true
# Those devices' TLS clients churn 17 KB buffers in one heap: glibc's malloc then spends about a fifth
# of the simulator's main thread searching fragmented bins (perf). The fleet scenario's own process
# (the simulator) runs on jemalloc when Debian's libjemalloc2 is there; the node and the agent it
# measures are started without it (bench/scenarios/fleet.ts).
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
case " $* " in *" fleet "*) [ -r "$JEMALLOC" ] && export LD_PRELOAD="$JEMALLOC" ;; esac
exec node --import tsx "$(dirname "$0")/run.ts" "$@"
