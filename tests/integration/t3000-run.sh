#!/bin/sh
# RUN on a busybox base, as root and unprivileged (subuid and single-ID
# mode): created files, whiteouts, opaque directories, hardlinks, symlinks,
# setuid bits, USER, heredocs, ENV/ARG, and what must never be in a layer.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox
ARG GREETING=hi
ENV WHO=world
RUN echo hello > /hello.txt && ln -s hello.txt /link && ln /hello.txt /hard && mkdir -p /opt/x && printf '#!/bin/sh\n' > /opt/x/tool && chmod 4755 /opt/x/tool
RUN rm /bin/yes && rm -r /var/lib
RUN rm -rf /usr/lib && mkdir /usr/lib && echo new > /usr/lib/only
USER 1000:1000
RUN echo mine > /home/app/mine.txt
USER root
RUN true
WORKDIR /work
RUN echo "$GREETING $WHO" > args && pwd > pwd && hostname > hn && test -e /proc/1/cmdline && ls /dev > devs
RUN <<EOF
echo from-heredoc > /work/hd1
EOF
RUN cat <<EOF > /work/hd2
line $WHO
EOF
RUN <<EOF
#!/bin/sh -e
echo shebang > /work/hd3
EOF
DF
chmod -R a+rX "$ctx"

for m in $MODES; do
  import_busybox "$m"
  out=$(userdir "out-$m" "$m")
  if ob "$m" build -t run-test -o "$out" "$ctx" >"$TESTDIR/b-$m.out" 2>"$TESTDIR/b-$m.err"; then
    ok "[$m] build with RUN steps"
  else
    not_ok "[$m] build with RUN steps"; diag <"$TESTDIR/b-$m.err"; continue
  fi
  check "[$m] image validates" oci_validate "$out" run-test:latest
  check "[$m] umoci unpacks it" umoci_unpack "$out" run-test:latest "$TESTDIR/u-$m"
  r=$TESTDIR/u-$m/rootfs
  check_eq "[$m] created file" "$(cat "$r/hello.txt")" hello
  check_eq "[$m] symlink" "$(readlink "$r/link")" hello.txt
  check_eq "[$m] hardlink" "$(stat -c %i "$r/hello.txt")" "$(stat -c %i "$r/hard")"
  check_eq "[$m] setuid bit" "$(stat -c %a "$r/opt/x/tool")" 4755
  check "[$m] deleted file is gone" test ! -e "$r/bin/yes"
  check "[$m] deleted directory is gone" test ! -e "$r/var/lib"
  check_eq "[$m] replaced directory holds only the new file" "$(ls "$r/usr/lib")" only
  check "[$m] /lib is still the base's symlink" test -L "$r/lib"
  check_eq "[$m] USER 1000 then RUN writes a file" "$(cat "$r/home/app/mine.txt")" mine
  check_eq "[$m] ARG and ENV visible to RUN" "$(cat "$r/work/args")" "hi world"
  check_eq "[$m] WORKDIR is the cwd" "$(cat "$r/work/pwd")" /work
  check_eq "[$m] hostname" "$(cat "$r/work/hn")" obuild
  check_eq "[$m] minimal /dev" "$(tr '\n' ' ' <"$r/work/devs")" "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero "
  check_eq "[$m] RUN <<EOF script" "$(cat "$r/work/hd1")" from-heredoc
  check_eq "[$m] cmd <<EOF with expansion by the shell" "$(cat "$r/work/hd2")" "line world"
  check_eq "[$m] heredoc with an interpreter line" "$(cat "$r/work/hd3")" shebang

  # layer by layer (0 is the base)
  layer_listing "$out" run-test:latest 1 >"$TESTDIR/l1"
  cat >"$TESTDIR/w1" <<'W'
f 0644 0:0 6 - hard
h 0644 0:0 0 hard hello.txt
l 0777 0:0 0 hello.txt link
d 0755 0:0 0 - opt
d 0755 0:0 0 - opt/x
f 4755 0:0 10 - opt/x/tool
W
  check_files "[$m] layer 1: new files, hardlink, symlink, setuid" "$TESTDIR/l1" "$TESTDIR/w1"
  layer_listing "$out" run-test:latest 2 | grep -v '^d' >"$TESTDIR/l2"
  printf 'f 0000 0:0 0 - bin/.wh.yes\nf 0000 0:0 0 - var/.wh.lib\n' >"$TESTDIR/w2"
  check_files "[$m] layer 2: whiteouts for a file and a directory" "$TESTDIR/l2" "$TESTDIR/w2"
  layer_listing "$out" run-test:latest 3 >"$TESTDIR/l3"
  check "[$m] layer 3: opaque directory marker" grep -q ' usr/lib/.wh..wh..opq$' "$TESTDIR/l3"
  layer_listing "$out" run-test:latest 4 >"$TESTDIR/l4"
  check "[$m] layer 4: the file of USER 1000 is owned by 1000:1000" grep -q '^f 0644 1000:1000 5 - home/app/mine.txt$' "$TESTDIR/l4"
  c=$TESTDIR/cfg-$m
  skopeo_config "$out" run-test:latest >"$c"
  check_eq "[$m] RUN true adds no layer (empty_layer history)" \
    "$(json_get "$c" '[h.get("empty_layer", False) for h in j["history"] if h["created_by"] == "RUN /bin/sh -c true"]')" "[true]"
  check_eq "[$m] history records the command" "$(json_get "$c" 'j["history"][3]["created_by"]')" \
    "RUN /bin/sh -c echo hello > /hello.txt && ln -s hello.txt /link && ln /hello.txt /hard && mkdir -p /opt/x && printf '#!/bin/sh\n' > /opt/x/tool && chmod 4755 /opt/x/tool"
  n=$(json_get "$c" 'len(j["rootfs"]["diff_ids"])')
  all=$TESTDIR/all-$m
  : >"$all"
  i=1
  while [ "$i" -lt "$n" ]; do layer_listing "$out" run-test:latest "$i" >>"$all"; i=$((i + 1)); done
  check_eq "[$m] no /proc, /dev, /sys, hosts, resolv.conf or overlay work files in any layer" \
    "$(grep -Ec ' (proc|dev|sys|run|etc/hosts|etc/resolv.conf|etc/hostname|work/work|\.oldroot)(/|$)' "$all")" 0
done
done_testing
