#!/bin/bash
# cached-rebuild: the example service, rebuilt with nothing changed.
#   FROM <Debian minbase>
#   RUN apt-get update && apt-get install -y --no-install-recommends python3
#   COPY app.py /app/
#   CMD ["python3", "/app/app.py"]
# Built once (untimed: base import / pull, RUN, COPY), then timed rebuilds
# with the same store / buildah storage (buildah with --layers, so its layer
# cache is warm too) and the same output layout (obuild build -o DIR vs
# buildah bud + push oci:DIR).  If Debian's mirror does not answer, the RUN
# writes ~50 MB of files instead (a note says so).  --quick: busybox base, a
# small RUN.  Run alone: bash bench/b-cached-rebuild.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

b_cached_rebuild() { service_bench cached; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_init; table_header; b_cached_rebuild
fi
