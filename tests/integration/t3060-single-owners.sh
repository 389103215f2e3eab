#!/bin/sh
# Single-ID mode records the owners chown asks for (seccomp user
# notification, src/lib/seccomp_notify.c): its layers carry the same
# owners as subuid mode's, file by file.  The step is hostile: chown
# through symlinks out of the root, of /proc, of a read-only bind, a racing
# symlink swap, a flood of calls, an interrupt while calls are pending.
# Without user notification obuild warns once and records root as before.
. "$(dirname "$0")/lib.sh"

case " $MODES " in
  *" single "*) ;;
  *) skip "single-ID mode is not among the modes ($MODES)"; done_testing ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  skip "the attack checks look at the host's files as root"; done_testing
fi

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox
RUN echo 'svc:x:1500:1500::/srv/svc:/bin/sh' >>/etc/passwd && echo 'svc:x:1500:' >>/etc/group \
 && mkdir -p /srv/svc && chown 1500:1500 /srv/svc && touch /srv/f && chown svc:svc /srv/f \
 && ln -s f /srv/symlink && chown -h 1600:1700 /srv/symlink \
 && mkdir -p /srv/tree/sub && touch /srv/tree/a /srv/tree/sub/b && chown -R 1234:4321 /srv/tree \
 && printf x >/srv/suid && chmod 4755 /srv/suid && chown 1500:1500 /srv/suid \
 && cd /srv/svc && touch rel && chown 77:88 ../svc/./rel \
 && touch /srv/back && chown 5:5 /srv/back && chown 0:0 /srv/back \
 && ln -s /srv/tree/a /srv/abs && chown 99:98 /srv/abs
RUN chown 2:3 /srv/f && chown 4:5 /bin/busybox && chown 0:0 /etc/group && chown -h 0:0 /lib
DF
chmod -R a+rX "$ctx"

# what subuid mode gives, and single-ID mode must give (a symlink's owner
# is recorded on its directory: a symlink cannot carry a user.* xattr)
cat >"$TESTDIR/want1" <<'W'
d 0755 0:0 0 - etc
f 0644 0:0 - - etc/group
f 0644 0:0 - - etc/passwd
d 0755 0:0 0 - srv
l 0777 0:0 0 /srv/tree/a srv/abs
f 0644 0:0 0 - srv/back
f 0644 1500:1500 0 - srv/f
f 0755 1500:1500 1 - srv/suid
d 0755 1500:1500 0 - srv/svc
f 0644 77:88 0 - srv/svc/rel
l 0777 1600:1700 0 f srv/symlink
d 0755 1234:4321 0 - srv/tree
f 0644 99:98 0 - srv/tree/a
d 0755 1234:4321 0 - srv/tree/sub
f 0644 1234:4321 0 - srv/tree/sub/b
W
for m in subuid single; do
  case " $MODES " in *" $m "*) ;; *) continue ;; esac
  import_busybox "$m"
  out=$(userdir "out-$m" "$m")
  if ob "$m" build -t owners -o "$out" "$ctx" >"$TESTDIR/b-$m.out" 2>"$TESTDIR/b-$m.err"; then
    ok "[$m] build: chown, chown -R, chown -h, chown through symlinks"
  else
    not_ok "[$m] build: chown, chown -R, chown -h, chown through symlinks"; diag <"$TESTDIR/b-$m.err"; continue
  fi
  check "[$m] no warning about chown" sh -c "! grep -q 'cannot pass chown' '$TESTDIR/b-$m.out' '$TESTDIR/b-$m.err'"
  layer_listing "$out" owners:latest 1 | awk '$1 == "f" && $NF ~ /^etc\// { $4 = "-" } { print }' >"$TESTDIR/l1-$m"
  cp "$TESTDIR/want1" "$TESTDIR/want1-$m"
  # (the sizes of etc/passwd and etc/group are the base's business)
  check_files "[$m] layer 1: the owners chown asked for (set-user-ID dropped by chown)" \
    "$TESTDIR/l1-$m" "$TESTDIR/want1-$m"
  layer_listing "$out" owners:latest 2 | awk '$1 != "d" { print $1, $3, $NF }' >"$TESTDIR/l2-$m"
  printf 'f 4:5 bin/busybox\nf 0:0 etc/group\nl 0:0 lib\nf 2:3 srv/f\n' >"$TESTDIR/want2"
  check_files "[$m] layer 2: chown of files of lower layers (copied up, even to the same owner; xattr owner replaced)" \
    "$TESTDIR/l2-$m" "$TESTDIR/want2"
  # obuild run: stat shows the image's owners (single-ID mode: answered
  # from the records, as in RUN)
  check_eq "[$m] obuild run: stat shows the image's owners, a symlink's included" \
    "$(ob "$m" run --rm owners stat -c '%u:%g %n' /srv/f /srv/svc /srv/symlink /srv/tree/sub/b 2>&1)" \
    "2:3 /srv/f
1500:1500 /srv/svc
1600:1700 /srv/symlink
1234:4321 /srv/tree/sub/b"
done
# the copy snapshotter (no overlayfs): the step's root is a plain directory
out=$(userdir "out-copy" single)
if ob single build --no-cache --snapshotter=copy -t owners-copy -o "$out" "$ctx" >"$TESTDIR/c.out" 2>"$TESTDIR/c.err"; then
  layer_listing "$out" owners-copy:latest 1 | awk '$1 == "f" && $NF ~ /^etc\// { $4 = "-" } { print }' >"$TESTDIR/l1-copy"
  check_files "[single] --snapshotter=copy: the same owners" "$TESTDIR/l1-copy" "$TESTDIR/want1-single"
else
  not_ok "[single] --snapshotter=copy: the same owners"; diag <"$TESTDIR/c.err"
fi
if [ -f "$TESTDIR/l1-subuid" ] && [ -f "$TESTDIR/l1-single" ]; then
  check_files "[single] layer 1: the same owners as subuid mode's, file by file, symlinks included" \
    "$TESTDIR/l1-single" "$TESTDIR/l1-subuid"
fi

# ---- stat reports the recorded owners ----
# Single-ID mode's supervisor answers the stat calls of files with an owner
# recorded; subuid mode's kernel is the reference: the same answers, errors
# included, and the tools that copy an owner from stat (a fstat + fchown of
# the new file, as useradd writes /etc/shadow+; sed -i; cp -p) copy the
# recorded one into the layer.
sctx=$TESTDIR/sctx
mkdir -p "$sctx"
if command -v cc >/dev/null 2>&1 &&
   cc -static -pthread -O1 -o "$sctx/stat-probe" "$FIXTURES/stat-probe.c" 2>"$TESTDIR/cc.err"; then
  cat >"$sctx/Dockerfile" <<'DF'
FROM busybox
COPY stat-probe /stat-probe
RUN touch /f && chown 1500:1501 /f && chmod 640 /f && stat -c %u:%g /f >/same-run \
 && /stat-probe cpown /f /same \
 && mkdir -p /d/sub && chown 1600:1601 /d/sub && ln -s f /l && ln -s loop /loop \
 && ln -s ../../../../../../f /esc && chown -h 1700:1701 /l
RUN stat -c %u:%g /f >/later && ls -ln /f | awk '{ print $3 ":" $4 }' >/ls \
 && stat -L -c %u:%g /l >/follow && stat -c %u:%g /l >/lnk && stat -c %u:%g /d/sub >/dir \
 && cd /d && stat -c %u:%g ../../../../f >/dotdot && cd / \
 && { stat /missing 2>/missing-msg; echo $? >/missing-rc; } \
 && stat -L -c %u:%g /proc/self >/proc-self \
 && find / -xdev -user 1500 >/find \
 && /stat-probe </dev/null >/probe && /stat-probe killstorm 1000 >/killstorm \
 && /stat-probe cpown /f /g && /stat-probe cpown /d/sub/../../esc /h \
 && cp -p /f /p && cp /f /plain && echo x >/s && chown 1800:1801 /s && sed -i s/x/y/ /s \
 && cp /bin/busybox /pinger && /stat-probe setcap /pinger
DF
  chmod -R a+rX "$sctx"
  for m in subuid single; do
    case " $MODES " in *" $m "*) ;; *) continue ;; esac
    out=$(userdir "sout-$m" "$m")
    as "$m" env OBUILD_ROOT="$(store "$m")" timeout 300 "$OB" build -t st -o "$out" "$sctx" \
      >"$TESTDIR/s-$m.out" 2>"$TESTDIR/s-$m.err"
    rc=$?
    if [ $rc -ne 0 ]; then
      not_ok "[$m] stat of recorded owners: the build finishes (exit $rc)"; diag <"$TESTDIR/s-$m.err"; continue
    fi
    ok "[$m] stat of recorded owners: the build finishes"
    layer_listing "$out" st:latest 2 | awk '$NF == "same" { print $1, $2, $3, $NF }' >"$TESTDIR/sl2-$m"
    check_eq "[$m] fstat + fchown in the RUN that chowned: the owner copied into the layer" \
      "$(cat "$TESTDIR/sl2-$m")" "f 0640 1500:1501 same"
    layer_listing "$out" st:latest 3 | awk '$1 == "f" && $NF ~ /^(g|h|p|plain|s)$/ { print $2, $3, $NF }' >"$TESTDIR/sl3-$m"
    printf '0640 1500:1501 g\n0640 1500:1501 h\n0640 1500:1501 p\n0640 0:0 plain\n0644 1800:1801 s\n' >"$TESTDIR/sl3-want"
    check_files "[$m] a later RUN: fstat + fchown (of /f, of ../../esc -> /f), cp -p, sed -i keep the owner; cp: root" \
      "$TESTDIR/sl3-$m" "$TESTDIR/sl3-want"
    rm -rf "$TESTDIR/su-$m"
    umoci_unpack "$out" st:latest "$TESTDIR/su-$m" 2>"$TESTDIR/su-$m.err" || diag <"$TESTDIR/su-$m.err"
    r=$TESTDIR/su-$m/rootfs
    check_eq "[$m] stat -c %u:%g in the RUN that chowned" "$(cat "$r/same-run")" 1500:1501
    check_eq "[$m] stat -c %u:%g in a later RUN" "$(cat "$r/later")" 1500:1501
    check_eq "[$m] ls -ln" "$(cat "$r/ls")" 1500:1501
    check_eq "[$m] stat -L of a symlink: its target's owner" "$(cat "$r/follow")" 1500:1501
    check_eq "[$m] stat (lstat) of a symlink: the symlink's" "$(cat "$r/lnk")" 1700:1701
    check_eq "[$m] stat of a directory" "$(cat "$r/dir")" 1600:1601
    check_eq "[$m] stat ../../../../f from /d: /f, inside the root" "$(cat "$r/dotdot")" 1500:1501
    check_eq "[$m] stat /missing: exit 1" "$(cat "$r/missing-rc")" 1
    check_eq "[$m] ... No such file or directory" "$(cat "$r/missing-msg")" \
      "stat: can't stat '/missing': No such file or directory"
    check_eq "[$m] stat -L /proc/self: the kernel's answer" "$(cat "$r/proc-self")" 0:0
    check_eq "[$m] find -user 1500" "$(sort "$r/find" | tr '\n' ' ')" "/f /same "
    check "[$m] probe: threads exiting mid-call" grep -qx 'threads: exiting' "$r/probe"
    check_eq "[$m] 4,000 processes killed in the middle of stat calls: later calls still answered" \
      "$(cat "$r/killstorm")" "killstorm: stat /f: 1500:1501 100640 0"
    check_eq "[$m] a file capability set in the RUN (setcap cap_net_raw+ep) is in the layer" \
      "$(python3 -c '
import json, sys, tarfile
lay, tag = sys.argv[1], "st:latest"
idx = json.load(open(lay + "/index.json"))
d = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][-1]
blob = lambda x: lay + "/blobs/sha256/" + x.split(":")[1]
m = json.load(open(blob(d["digest"])))
for e in tarfile.open(blob(m["layers"][3]["digest"])).getmembers():
    if e.name == "pinger":
        print(e.pax_headers.get("SCHILY.xattr.security.capability", "none").encode("latin-1").hex())
' "$out")" "0100000200200000000000000000000000000000"
    grep -v '^threads' "$r/probe" >"$TESTDIR/probe-$m" 2>/dev/null
  done
  if [ -s "$TESTDIR/probe-single" ] && [ -s "$TESTDIR/probe-subuid" ]; then
    cp "$TESTDIR/probe-subuid" "$TESTDIR/probe-want"
    cp "$TESTDIR/probe-single" "$TESTDIR/probe-got"
    check_files "[single] stat, lstat, fstat, newfstatat, statx: results and errors as subuid mode's kernel gives" \
      "$TESTDIR/probe-got" "$TESTDIR/probe-want"
    check "[single] ... recorded owners among them (stat, fstat, statx of a dirfd's sub)" \
      sh -c "grep -qx 'path: stat /f: 1500:1501 100640 0' '$TESTDIR/probe-got' && grep -qx 'fstat: 1500:1501 100640 0' '$TESTDIR/probe-got' && grep -qx 'path: statx dirfd sub: 1600:1601 40755 mask-ids 18' '$TESTDIR/probe-got'"
    check "[single] ... from a second thread (fstat, a dirfd's sub); from a chrooted child (its own /f, /sub)" \
      sh -c "grep -qx 'thread: fstat: 1500:1501 100640 0' '$TESTDIR/probe-got' && grep -qx 'thread: fstatat dirfd sub: 1600:1601 40755 0' '$TESTDIR/probe-got' && grep -qx 'chroot: stat /f: errno 2' '$TESTDIR/probe-got' && grep -qx 'chroot: stat /sub: 1600:1601 40755 0' '$TESTDIR/probe-got' && grep -qx 'chroot: fstat: 1500:1501 100640 0' '$TESTDIR/probe-got'"
    check "[single] ... a symlink itself (lstat, ../l, its O_PATH descriptor): its recorded owner; fchown of that: EBADF" \
      sh -c "grep -q '^lstat /l: 1700:1701 120777' '$TESTDIR/probe-single' && grep -q '^statx dirfd ../l nofollow: 1700:1701 ' '$TESTDIR/probe-single' && grep -q '^fstat O_PATH|O_NOFOLLOW /l: 1700:1701 ' '$TESTDIR/probe-single' && grep -qx 'fchown O_PATH /l: -1 errno 9' '$TESTDIR/probe-single'"
  fi
else
  diag <"$TESTDIR/cc.err" 2>/dev/null
  skip "stat of recorded owners: no C compiler for tests/fixtures/stat-probe.c"
fi

# ---- a hostile step (single-ID mode) ----
m=single
xattr_of() { python3 -c 'import os,sys
try: print(os.getxattr(sys.argv[1], "user.obuild.owner", follow_symlinks=False).decode())
except OSError as e: print("none")' "$1"; }
passwd_before=$(stat -c '%u:%g %Z' /etc/passwd)
echo 'do not touch' >"$ctx/data"
chmod a+r "$ctx/data"
cat >"$ctx/Dockerfile.attack" <<'DF'
FROM busybox
RUN ln -s /etc/passwd /abs && chown 11:11 /abs; echo $? >/r-abs; \
    ln -s ../../../../../../../../../../etc/passwd /srv-rel && chown 12:12 /srv-rel; echo $? >/r-rel; \
    ln -s /etc/debian_version /hostonly && chown 13:13 /hostonly 2>/r-hostonly-msg; echo $? >/r-hostonly; \
    chown 14:14 /proc/self/status 2>/dev/null; echo $? >/r-proc-self; \
    chown 14:14 /proc/1/status 2>/r-proc1-msg; echo $? >/r-proc1; \
    chown 14:14 /sys/kernel 2>/dev/null; echo $? >/r-sys; \
    chown 14:14 /proc/self/fd/0 2>/dev/null; echo $? >/r-fd0
RUN --mount=type=bind,target=/ctx chown 15:15 /ctx/data 2>/r-rofs-msg; echo $? >/r-rofs
RUN mkdir -p /rd && touch /rd/passwd && \
    (i=0; while [ $i -lt 150 ]; do ln -sfn /etc /race; ln -sfn /rd /race; i=$((i+1)); done) & \
    i=0; while [ $i -lt 150 ]; do chown 16:16 /race/passwd 2>/dev/null; i=$((i+1)); done; wait
RUN mkdir /fl && cd /fl && seq 1 3000 | xargs touch && chown -R 9:9 /fl \
 && for j in 1 2 3 4; do chown -R 8:8 /fl & done; wait
DF
out=$(userdir "out-attack" "$m")
if ob "$m" build -f "$ctx/Dockerfile.attack" -t attack -o "$out" "$ctx" >"$TESTDIR/a.out" 2>"$TESTDIR/a.err"; then
  ok "[$m] hostile chown calls: the build finishes"
else
  not_ok "[$m] hostile chown calls: the build finishes"; diag <"$TESTDIR/a.err"
fi
check_eq "[$m] the host's /etc/passwd: owner and ctime unchanged" "$(stat -c '%u:%g %Z' /etc/passwd)" "$passwd_before"
check_eq "[$m] the host's /etc/passwd: no owner xattr" "$(xattr_of /etc/passwd)" none
check_eq "[$m] the host's /etc/debian_version: no owner xattr" "$(xattr_of /etc/debian_version)" none
check_eq "[$m] the context's file (read-only bind): no owner xattr" "$(xattr_of "$ctx/data")" none
umoci_unpack "$out" attack:latest "$TESTDIR/ua" 2>"$TESTDIR/umoci.err" || diag <"$TESTDIR/umoci.err"
r=$TESTDIR/ua/rootfs
check_eq "[$m] chown via an absolute symlink to /etc/passwd: succeeds" "$(cat "$r/r-abs")" 0
check_eq "[$m] chown via ../../..: succeeds" "$(cat "$r/r-rel")" 0
layer_listing "$out" attack:latest 1 >"$TESTDIR/al1"
check "[$m] ... on the image's /etc/passwd (12:12), inside the root" grep -q '^f 0644 12:12 [0-9]* - etc/passwd$' "$TESTDIR/al1"
check_eq "[$m] chown via a symlink to a file only the host has: fails" "$(cat "$r/r-hostonly")" 1
check "[$m] ... with ENOENT" grep -q 'No such file or directory' "$r/r-hostonly-msg"
check_eq "[$m] chown /proc/self/status fails" "$(cat "$r/r-proc-self")" 1
check_eq "[$m] chown /proc/1/status fails" "$(cat "$r/r-proc1")" 1
check "[$m] ... with EPERM" grep -q 'Operation not permitted' "$r/r-proc1-msg"
check_eq "[$m] chown /sys/kernel fails" "$(cat "$r/r-sys")" 1
check_eq "[$m] chown /proc/self/fd/0 (a magic link) fails" "$(cat "$r/r-fd0")" 1
check_eq "[$m] chown on a read-only bind of the context fails" "$(cat "$r/r-rofs")" 1
check "[$m] ... with EROFS" grep -q 'Read-only file system' "$r/r-rofs-msg"
layer_listing "$out" attack:latest 3 >"$TESTDIR/al3"
check "[$m] racing symlink swap: only files inside the root were recorded" \
  sh -c "! grep -v -e ' rd/passwd\$' -e ' etc/passwd\$' -e ' race\$' -e ' etc\$' -e ' rd\$' '$TESTDIR/al3' | grep -q ."
layer_listing "$out" attack:latest 4 >"$TESTDIR/al4"
check_eq "[$m] flood: 3001 chowns x 5 (4 at once): every file recorded" "$(grep -c '^[fd] [0-9]* 8:8 ' "$TESTDIR/al4")" 3001

# an interrupt while the step floods chown: exit 130, promptly
printf 'FROM busybox\nRUN touch /x && echo started && while :; do chown 1:1 /x; done\n' >"$ctx/Dockerfile.int"
ob "$m" build -f "$ctx/Dockerfile.int" -t int "$ctx" >"$TESTDIR/i.out" 2>"$TESTDIR/i.err" &
bg=$!
i=0; until grep -q started "$TESTDIR/i.out" "$TESTDIR/i.err" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
pid= i=0
while [ -z "$pid" ] && [ $i -lt 50 ]; do
  for p in $(pgrep -f "$OB build -f $ctx/Dockerfile.int"); do
    pp=$(ps -o ppid= -p "$p" | tr -d ' ')
    [ "$(readlink "/proc/$p/exe")" = "$OB" ] && [ "$(readlink "/proc/$pp/exe")" != "$OB" ] && pid=$p
  done
  [ -n "$pid" ] || sleep 0.1
  i=$((i + 1))
done
sleep 0.5
start=$(date +%s)
kill -INT "$pid"
wait "$bg"; rc=$?
check_eq "[$m] SIGINT during a chown loop: exit 130" "$rc" 130
check "[$m] ... promptly" test $(($(date +%s) - start)) -le 5

# no user notification (as on Linux < 5.0): one warning, root as before;
# and the layers made so are not reused once notification works
out=$(userdir "out-nonotify" "$m")
if as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_TEST_NO_SECCOMP_NOTIFY=1 "$OB" build -t nn -o "$out" "$ctx" \
     >"$TESTDIR/n.out" 2>"$TESTDIR/n.err"; then
  ok "[$m] without user notification: the build works"
else
  not_ok "[$m] without user notification: the build works"; diag <"$TESTDIR/n.err"
fi
check_eq "[$m] ... and warns once (two RUN steps)" \
  "$(cat "$TESTDIR/n.out" "$TESTDIR/n.err" | grep -c '^warning: this kernel cannot pass chown calls to obuild (seccomp user notification): in single-ID mode, files a RUN step chowns keep root as their owner in the layer$')" 1
check "[$m] ... and records root, as before" \
  sh -c "python3 '$FIXTURES/layer-listing.py' '$out' nn:latest 1 | grep -q '^f 0644 0:0 0 - srv/f\$'"
out=$(userdir "out-again" "$m")
ob "$m" build -t again -o "$out" "$ctx" >/dev/null 2>&1
check "[$m] with notification again: the layer is made anew (1500:1500), not the cached one" \
  sh -c "python3 '$FIXTURES/layer-listing.py' '$out' again:latest 1 | grep -q '^f 0644 1500:1500 0 - srv/f\$'"
done_testing
