#!/bin/sh
# RUN --mount, as root and unprivileged: bind (context, rw copy, another
# stage), cache (persists across builds, never in a layer, sharing=locked
# serializes concurrent builds), tmpfs, secret (file and env, never in a
# blob or the history), ssh (agent socket), mount points never in a layer,
# and the errors.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx/data/sub"
echo from-context >"$ctx/data/hello.txt"
echo deep >"$ctx/data/sub/x"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox
WORKDIR /w
RUN --mount=target=/src,source=data cat /src/hello.txt /src/sub/x > /w/seen && if touch /src/new 2>/dev/null; then echo rw > /w/ro; else echo ro > /w/ro; fi
RUN --mount=type=bind,source=data,target=/rw,rw echo changed > /rw/hello.txt && echo new > /rw/new && cat /rw/hello.txt > /w/rwseen
RUN --mount=type=bind,source=data,target=/rw2 cat /rw2/hello.txt > /w/after-rw && ls /rw2 > /w/after-rw-ls
ARG SRC=data/hello.txt
RUN --mount=type=bind,source=$SRC,target=rel.txt cat /w/rel.txt > /w/relseen
RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/f && ls /scratch > /w/tmpfs1
RUN --mount=type=tmpfs,target=/scratch ls -A /scratch > /w/tmpfs2 && echo done >> /w/tmpfs2
RUN --mount=type=tmpfs,target=/a --mount=type=cache,target=/a/b/c,id=nested touch /a/b/c/f && ls /a/b > /w/nested
DF
cat >"$ctx/df.stage" <<'DF'
FROM busybox AS tools
RUN echo tool > /tool.txt
FROM busybox
RUN --mount=from=tools,target=/t,source=/tool.txt cat /t > /tool
DF
printf '**/*.secret\n' >"$ctx/.dockerignore"
echo hidden >"$ctx/data/x.secret"
cat >"$ctx/df.ignore" <<'DF'
FROM busybox
RUN --mount=target=/src,source=data ls /src > /ls
DF

cat >"$ctx/df.cache" <<'DF'
FROM busybox
ARG N
RUN --mount=type=cache,target=/root/.cache/app,id=c1 echo "run $N" >> /root/.cache/app/log && cat /root/.cache/app/log > /seen
DF
cat >"$ctx/df.locked" <<'DF'
FROM busybox
ARG N
RUN --mount=type=cache,target=/c,id=lk,sharing=locked echo "start $N" >> /c/log && sleep 2 && echo "end $N" >> /c/log
DF
cat >"$ctx/df.secret" <<'DF'
FROM busybox
RUN --mount=type=secret,id=tok --mount=type=secret,id=envsec,env=MYSEC --mount=type=secret,id=tok,target=/etc/tok2,mode=0440 md5sum /run/secrets/tok | cut -c1-32 > /tok.md5 && printf %s "$MYSEC" | md5sum | cut -c1-32 > /env.md5 && stat -c %a /run/secrets/tok /etc/tok2 > /modes && if [ -e /run/secrets/envsec ]; then echo yes; else echo no; fi > /envfile
RUN --mount=type=secret,id=optional if [ -e /run/secrets/optional ]; then echo yes; else echo no; fi > /optional
DF
cat >"$ctx/df.req" <<'DF'
FROM busybox
RUN --mount=type=secret,id=nope,required=true true
DF
cat >"$ctx/df.ssh" <<'DF'
FROM busybox
RUN --mount=type=ssh if [ -S "$SSH_AUTH_SOCK" ]; then echo "$SSH_AUTH_SOCK"; fi > /sshsock
DF
cat >"$ctx/df.sshreq" <<'DF'
FROM busybox
RUN --mount=type=ssh,required=true true
DF
printf 'FROM busybox\nRUN --mount=type=nfs,target=/x true\n' >"$ctx/df.e-type"
printf 'FROM busybox\nRUN --mount=type=cache,target=/x,sharing=bad true\n' >"$ctx/df.e-sharing"
printf 'FROM busybox\nRUN --mount=type=cache true\n' >"$ctx/df.e-target"
printf 'FROM busybox\nRUN --mount=type=bind,target=/x,foo=bar true\n' >"$ctx/df.e-key"
printf 'FROM busybox\nRUN --mount=source=../etc,target=/x true\n' >"$ctx/df.e-outside"
printf 'FROM busybox\nRUN --mount=type=tmpfs,target=/proc/x true\n' >"$ctx/df.e-proc"
chmod -R a+rX "$ctx"

SECRET_FILE_VALUE=s3cr3t-file-Qx7Zk91
SECRET_ENV_VALUE=s3cr3t-env-Vb2Lm48

# all_layers DIR TAG: the entries of every layer but the base
all_layers() {
  al_c=$TESTDIR/.cfg.$$
  skopeo_config "$1" "$2" >"$al_c"
  al_n=$(json_get "$al_c" 'len(j["rootfs"]["diff_ids"])')
  al_i=1
  while [ "$al_i" -lt "$al_n" ]; do layer_listing "$1" "$2" "$al_i"; al_i=$((al_i + 1)); done
}
# blobs_grep DIR WORD: how many blobs of the layout DIR hold WORD (gzip or not)
blobs_grep() {
  bg_k=0
  for bg_b in "$1"/blobs/sha256/*; do
    if { gzip -dc "$bg_b" 2>/dev/null || cat "$bg_b"; } | grep -q "$2"; then bg_k=$((bg_k + 1)); fi
  done
  echo "$bg_k"
}

for m in $MODES; do
  import_busybox "$m"
  out=$(userdir "out-$m" "$m")

  # ---- bind, tmpfs ----
  if ob "$m" build -t mnt -o "$out" "$ctx" >"$TESTDIR/b-$m.out" 2>"$TESTDIR/b-$m.err"; then
    ok "[$m] build with bind and tmpfs mounts"
  else
    not_ok "[$m] build with bind and tmpfs mounts"; diag <"$TESTDIR/b-$m.err"
  fi
  if check "[$m] umoci unpacks it" umoci_unpack "$out" mnt:latest "$TESTDIR/u-$m"; then
    r=$TESTDIR/u-$m/rootfs
    check_eq "[$m] bind from the context: content visible" "$(cat "$r/w/seen" | tr '\n' ' ')" "from-context deep "
    check_eq "[$m] bind is read-only by default" "$(cat "$r/w/ro")" ro
    check_eq "[$m] bind rw: the step sees its writes" "$(cat "$r/w/rwseen")" changed
    check_eq "[$m] bind rw: writes do not persist to the next step" "$(cat "$r/w/after-rw")" from-context
    check "[$m] bind rw: the new file is not in the next mount" sh -c "! grep -q new '$r/w/after-rw-ls'"
    check_eq "[$m] bind of a file, target relative to WORKDIR, source from an ARG" "$(cat "$r/w/relseen")" from-context
    check_eq "[$m] tmpfs: the step can write" "$(cat "$r/w/tmpfs1")" f
    check_eq "[$m] tmpfs: writes vanish after the step" "$(cat "$r/w/tmpfs2")" done
    check_eq "[$m] a mount inside another mount" "$(cat "$r/w/nested")" c
    for p in src rw rw2 t scratch a w/rel.txt w/new; do
      check "[$m] mount point /$p is not in the image" test ! -e "$r/$p"
    done
  fi
  check_eq "[$m] the context is unchanged by the rw bind" "$(cat "$ctx/data/hello.txt"; ls "$ctx/data" | tr '\n' ' ')" "from-context
hello.txt sub x.secret "
  all_layers "$out" mnt:latest >"$TESTDIR/all-$m"
  check_eq "[$m] no mount point or mounted content in any layer" \
    "$(grep -Ec ' (src|rw|rw2|t|scratch|a|w/rel\.txt|w/new|run|root/\.cache)(/|$)' "$TESTDIR/all-$m")" 0

  # bind from another stage (only the mount makes that stage needed)
  if ob "$m" build -t stg -o "$out" -f "$ctx/df.stage" "$ctx" >"$TESTDIR/st-$m.out" 2>"$TESTDIR/st-$m.err" \
     && umoci_unpack "$out" stg:latest "$TESTDIR/ust-$m"; then
    check_eq "[$m] bind from another stage" "$(cat "$TESTDIR/ust-$m/rootfs/tool")" tool
    check "[$m] its mount point is not in the image" test ! -e "$TESTDIR/ust-$m/rootfs/t"
  else
    not_ok "[$m] build with a bind from another stage"; diag <"$TESTDIR/st-$m.err"
  fi

  # .dockerignore applies to bind sources
  if ob "$m" build -t ign -o "$out" -f "$ctx/df.ignore" "$ctx" >"$TESTDIR/i-$m.out" 2>"$TESTDIR/i-$m.err" \
     && umoci_unpack "$out" ign:latest "$TESTDIR/ui-$m"; then
    check_eq "[$m] bind hides .dockerignore'd files" "$(tr '\n' ' ' <"$TESTDIR/ui-$m/rootfs/ls")" "hello.txt sub "
  else
    not_ok "[$m] build with a bind of an ignored file's directory"; diag <"$TESTDIR/i-$m.err"
  fi

  # ---- cache: persists across builds, never in a layer ----
  ok1=true
  ob "$m" build --no-cache --build-arg N=1 -t cache1 -o "$out" -f "$ctx/df.cache" "$ctx" >"$TESTDIR/c1-$m.out" 2>"$TESTDIR/c1-$m.err" || ok1=false
  ob "$m" build --no-cache --build-arg N=2 -t cache2 -o "$out" -f "$ctx/df.cache" "$ctx" >"$TESTDIR/c2-$m.out" 2>"$TESTDIR/c2-$m.err" || ok1=false
  if $ok1 && umoci_unpack "$out" cache2:latest "$TESTDIR/uc-$m"; then
    check_eq "[$m] cache mount: the second build sees what the first wrote" \
      "$(tr '\n' ' ' <"$TESTDIR/uc-$m/rootfs/seen")" "run 1 run 2 "
    all_layers "$out" cache2:latest >"$TESTDIR/allc-$m"
    check_eq "[$m] cache mount content and mount point not in the layer" \
      "$(grep -Ec ' root/\.cache' "$TESTDIR/allc-$m")" 0
    check "[$m] the cache lives in the store" sh -c "ls '$(store "$m")'/cache-mounts/*/* | grep -q log"
  else
    not_ok "[$m] two builds with a cache mount"; diag <"$TESTDIR/c2-$m.err"; diag <"$TESTDIR/c1-$m.err"
  fi

  # ---- cache sharing=locked: concurrent builds serialize ----
  ob "$m" build --no-cache --build-arg N=a -f "$ctx/df.locked" "$ctx" >"$TESTDIR/la-$m.out" 2>&1 &
  pa=$!
  ob "$m" build --no-cache --build-arg N=b -f "$ctx/df.locked" "$ctx" >"$TESTDIR/lb-$m.out" 2>&1 &
  pb=$!
  ra=0; rb=0
  wait "$pa" || ra=$?
  wait "$pb" || rb=$?
  check_eq "[$m] two concurrent builds with a locked cache succeed" "$ra $rb" "0 0"
  hex=$(printf %s lk | sha256sum | cut -c1-64)
  log=$(cat "$(store "$m")"/cache-mounts/*/"$hex"/log 2>/dev/null | awk '{print $1}' | tr '\n' ' ')
  check_eq "[$m] sharing=locked: one step ran after the other" "$log" "start end start end "

  # ---- secrets ----
  sf=$(userdir "sec-$m" "$m")/tok
  printf %s "$SECRET_FILE_VALUE" >"$sf"
  chmod 600 "$sf"
  [ "$m" != root ] && [ "$(id -u)" -eq 0 ] && chown "$T_USER" "$sf"
  if as "$m" env OBUILD_ROOT="$(store "$m")" OB_T_SECRET="$SECRET_ENV_VALUE" "$OB" build -t sec -o "$out" \
       --secret "id=tok,src=$sf" --secret id=envsec,env=OB_T_SECRET -f "$ctx/df.secret" "$ctx" \
       >"$TESTDIR/s-$m.out" 2>"$TESTDIR/s-$m.err" && umoci_unpack "$out" sec:latest "$TESTDIR/us-$m"; then
    r=$TESTDIR/us-$m/rootfs
    check_eq "[$m] secret from a file at /run/secrets/ID" "$(cat "$r/tok.md5")" "$(printf %s "$SECRET_FILE_VALUE" | md5sum | cut -c1-32)"
    check_eq "[$m] secret from an environment variable, as env=VAR" "$(cat "$r/env.md5")" "$(printf %s "$SECRET_ENV_VALUE" | md5sum | cut -c1-32)"
    check_eq "[$m] secret modes: 0400 by default, mode= applies" "$(tr '\n' ' ' <"$r/modes")" "400 440 "
    check_eq "[$m] env= without target: no file" "$(cat "$r/envfile")" no
    check_eq "[$m] a missing optional secret is skipped" "$(cat "$r/optional")" no
    check "[$m] no /run/secrets in the image" test ! -e "$r/run/secrets"
    check "[$m] no /etc/tok2 in the image" test ! -e "$r/etc/tok2"
    check_eq "[$m] the secret values are in no blob of the store" \
      "$(blobs_grep "$(store_oci "$m")" s3cr3t-)" 0
    check_eq "[$m] the secret values are in no blob of the output layout" "$(blobs_grep "$out" s3cr3t-)" 0
    check_eq "[$m] the secret values are nowhere else in the store" \
      "$(grep -rl s3cr3t- "$(store "$m")" 2>/dev/null | wc -l)" 0
    check_eq "[$m] the secret values are not in the build output" \
      "$(cat "$TESTDIR/s-$m.out" "$TESTDIR/s-$m.err" | grep -c s3cr3t-)" 0
    skopeo_config "$out" sec:latest >"$TESTDIR/sc-$m"
    check_eq "[$m] the secret values are not in the config or history" "$(grep -c s3cr3t- "$TESTDIR/sc-$m")" 0
  else
    not_ok "[$m] build with secrets"; diag <"$TESTDIR/s-$m.err"
  fi
  check_fail 3 'df\.req:2: secret nope: not provided' "[$m] a required secret that is missing: exit 3" \
    ob "$m" build -f "$ctx/df.req" "$ctx"
  check_fail 2 'secret' "[$m] --secret without id: exit 2" ob "$m" build --secret src=/etc/hostname -f "$ctx/df.req" "$ctx"

  # ---- ssh ----
  if command -v ssh-agent >/dev/null 2>&1; then
    sock=$(userdir "ssh-$m" "$m")/agent.sock
    rm -f "$sock"
    agent=$(as "$m" ssh-agent -a "$sock" -s | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
    if ob "$m" build -t ssh -o "$out" --ssh "default=$sock" -f "$ctx/df.ssh" "$ctx" >"$TESTDIR/ssh-$m.out" 2>"$TESTDIR/ssh-$m.err" \
       && umoci_unpack "$out" ssh:latest "$TESTDIR/ussh-$m"; then
      check_eq "[$m] ssh mount: the agent socket at SSH_AUTH_SOCK" "$(cat "$TESTDIR/ussh-$m/rootfs/sshsock")" /run/buildkit/ssh_agent.0
      check "[$m] ssh mount point not in the image" test ! -e "$TESTDIR/ussh-$m/rootfs/run/buildkit"
    else
      not_ok "[$m] build with an ssh mount"; diag <"$TESTDIR/ssh-$m.err"
    fi
    [ -n "$agent" ] && kill "$agent" 2>/dev/null
    check_fail 3 'df\.sshreq:2: ssh agent default: not provided' "[$m] required ssh without --ssh: exit 3" \
      ob "$m" build -f "$ctx/df.sshreq" "$ctx"
  else
    skip "[$m] ssh mount (no ssh-agent)"
  fi

  # ---- errors ----
  check_fail 3 'df\.e-type:2: RUN --mount: unsupported mount type "nfs"' "[$m] unknown mount type: exit 3" \
    ob "$m" build -f "$ctx/df.e-type" "$ctx"
  check_fail 3 'df\.e-sharing:2: .*unsupported sharing value "bad"' "[$m] sharing=bad: exit 3" \
    ob "$m" build -f "$ctx/df.e-sharing" "$ctx"
  check_fail 3 'df\.e-target:2: .*target is required' "[$m] missing target: exit 3" \
    ob "$m" build -f "$ctx/df.e-target" "$ctx"
  check_fail 3 "df\\.e-key:2: .*unexpected key 'foo'" "[$m] unknown option: exit 3" \
    ob "$m" build -f "$ctx/df.e-key" "$ctx"
  # ".." stops at the context's root, as BuildKit (path.Join("/", source)):
  # ../etc is the context's etc, missing here
  check_fail 4 'df\.e-outside:2: RUN --mount source=\.\./etc: not found in the build context' "[$m] bind source above the context: the context's own, not found: exit 4" \
    ob "$m" build -f "$ctx/df.e-outside" "$ctx"
  check_fail 3 'df\.e-proc:2: .*cannot mount over' "[$m] target under /proc: exit 3" \
    ob "$m" build -f "$ctx/df.e-proc" "$ctx"
done
done_testing
