#!/bin/bash
# rebuild-change: the example service of cached-rebuild (apt-get install
# python3 on the Debian minbase, COPY app.py /app/, CMD), built once
# (untimed), then timed rebuilds each after a one-line change of app.py
# (VERSION = "N", made before the run, untimed): the RUN comes from the
# cache, the COPY and everything after it run again.  Same store / buildah
# storage (--layers) and output layout for all runs.  --quick: busybox base,
# a small RUN.  Run alone: bash bench/b-rebuild-change.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

b_rebuild_change() { service_bench change; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_init; table_header; b_rebuild_change
fi
