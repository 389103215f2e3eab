#!/bin/bash
# single-owners: what recording chown's owners costs in single-ID mode
# (seccomp user notification, src/lib/seccomp_notify.c).  obuild against
# itself, not buildah: the second column is the same build with
# OBUILD_TEST_NO_SECCOMP_NOTIFY=1 (chown succeeds without effect, as before).
#   chown:    busybox base, RUN mkdir /d && cd /d && seq 1 N | xargs touch
#             && chown -R 1000:1000 /d   (N = 20000, --quick: 2000)
#   big RUN:  big-run-layer's RUN (cp -a calls fchown/lchown for every file)
#             on $BENCH_BASE
#   big RUN floor: the same with OBUILD_TEST_STAT_CONTINUE=1, the supervisor
#             answering every stat call at once without a lookup: the cost of
#             the round trips alone, which no faster lookup can go below
#   apt-get:  apt-get install -y --no-install-recommends python3 on the Debian
#             base, from a stage that downloaded the packages already (the
#             timed RUN does not touch the network); only when Debian's
#             mirror answers and the base is debian
# Needs BENCH_USER (single-ID mode is for unprivileged users).  Not part of
# run.sh's default set.  Run alone: BENCH_USER=obtest bash bench/b-single-owners.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

b_single_owners() {
  local r=$BENCH_WORK/res/single w=$BENCH_WORK/single i d v n=20000 apt=0
  local big='cp -a /usr /usr2 && cp -a /usr /usr3 && cp -a /var/lib /varlib2'
  [ "$BENCH_BASE" = busybox ] && big='cp -a /bin /bin2 && cp -a /usr /usr2 && cp -a /etc /etc2'
  [ "${BENCH_QUICK:-0}" = 1 ] && n=2000
  if [ -z "$BENCH_USER" ]; then
    note "single-owners: needs BENCH_USER (single-ID mode is for unprivileged users); skipped"
    return 0
  fi
  log "single-owners: single-ID mode with and without recording chown's owners"
  mkdir -p "$w/ctx"
  printf 'FROM %s\nRUN mkdir /d && cd /d && seq 1 %s | xargs touch && chown -R 1000:1000 /d\n' \
    busybox:latest "$n" >"$w/chown.Dockerfile"
  printf 'FROM %s\nRUN true\n' "$OB_BASE" >"$w/warm.Dockerfile"
  printf 'FROM %s\nRUN %s\n' "$OB_BASE" "$big" >"$w/big.Dockerfile"
  if [ "$BENCH_BASE" = debian ] &&
    curl -s -o /dev/null --max-time 10 http://deb.debian.org/debian/dists/bookworm/InRelease; then
    apt=1
    printf 'FROM %s\nRUN apt-get update && apt-get install -y --download-only --no-install-recommends python3\n' \
      "$OB_BASE" >"$w/aptwarm.Dockerfile"
    printf 'FROM aptwarm\nRUN apt-get install -y --no-install-recommends python3\n' >"$w/apt.Dockerfile"
  else
    note "single-owners: no apt-get row (needs the debian base and Debian's mirror)"
  fi
  chmod -R a+rX "$w"
  for i in $(seq "$BENCH_RUNS"); do
    for v in notify plain floor; do
      (
        # runuser passes the environment on to obuild
        export OBUILD_USERNS=single
        [ $v = plain ] && export OBUILD_TEST_NO_SECCOMP_NOTIFY=1
        if [ $v = floor ]; then
          export OBUILD_TEST_STAT_CONTINUE=1
          d=$(fresh_dir single-big-$v)
          { ob_import "$d" && ob "$d" build -q -t warm -f "$w/warm.Dockerfile" "$w/ctx" >/dev/null; } ||
            { log "obuild warm-up failed"; exit 1; }
          measure "$r.big-$v" ob_build "$d" "$w/big.Dockerfile" "$w/ctx" || exit 1
          rm -rf "$d"
          exit 0
        fi
        d=$(fresh_dir single-chown-$v)
        ob "$d" import -q "$(base_tar_busybox)" busybox:latest >/dev/null || exit 1
        measure "$r.chown-$v" ob_build "$d" "$w/chown.Dockerfile" "$w/ctx" || exit 1
        rm -rf "$d"
        d=$(fresh_dir single-big-$v)
        { ob_import "$d" && ob "$d" build -q -t warm -f "$w/warm.Dockerfile" "$w/ctx" >/dev/null; } ||
          { log "obuild warm-up failed"; exit 1; }
        measure "$r.big-$v" ob_build "$d" "$w/big.Dockerfile" "$w/ctx" || exit 1
        if [ $apt = 1 ]; then
          ob "$d" build -q -t aptwarm -f "$w/aptwarm.Dockerfile" "$w/ctx" >/dev/null ||
            { log "obuild apt-get download failed"; exit 1; }
          measure "$r.apt-$v" ob_build "$d" "$w/apt.Dockerfile" "$w/ctx" || exit 1
        fi
        rm -rf "$d"
      ) || return 1
    done
  done
  table_row "single chown x$n vs off" "$r.chown-notify" "$r.chown-plain"
  table_row "single big RUN vs off" "$r.big-notify" "$r.big-plain"
  table_row "single big RUN floor vs off" "$r.big-floor" "$r.big-plain"
  [ $apt = 1 ] && table_row "single apt-get vs off" "$r.apt-notify" "$r.apt-plain"
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_init; table_header; b_single_owners
fi
