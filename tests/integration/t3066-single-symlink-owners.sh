#!/bin/sh
# Single-ID mode records the owner chown -h (lchown, fchownat with
# AT_SYMLINK_NOFOLLOW) gives a symlink on the link's parent directory
# (user.obuild.lowner.<name>, see include/obuild/link_owner.h): the layer
# and lstat show it, as subuid mode's kernel does, entry by entry; a
# recreated link does not inherit it, no record reaches a layer, a forged
# one in the build context is not an owner, and a link to a host path
# reaches nothing on the host.
. "$(dirname "$0")/lib.sh"

case " $MODES " in
  *" single "*) ;;
  *) skip "single-ID mode is not among the modes ($MODES)"; done_testing ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  skip "the host checks look at the host's files as root"; done_testing
fi

# a host directory the unprivileged user owns: the supervisor (running as
# that user) could write its xattrs if it ever followed the step's link
host=$(userdir hostdir single)
host_before=$(stat -c '%u:%g %a %Z' "$host")
long236=$(python3 -c 'print("m" * 236)')
long250=$(python3 -c 'print("n" * 250)')
fp=$(printf %s tgt | sha256sum | cut -c1-16)

ctx=$TESTDIR/ctx
mkdir -p "$ctx/fd"
ln -s tgt "$ctx/fd/l"
# a forged record on a context directory, for its link l -> tgt
python3 -c 'import os, sys
os.setxattr(sys.argv[1], "user.obuild.lowner.l", sys.argv[2].encode())
os.setxattr(sys.argv[1], "user.keep", b"k")' "$ctx/fd" "66:66:$fp"
# an archive for ADD: a symlink and a file owned 77:78
python3 -c 'import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT)
for name, typ in (("t", tarfile.DIRTYPE), ("t/l", tarfile.SYMTYPE), ("t/f", tarfile.REGTYPE)):
    i = tarfile.TarInfo(name); i.type = typ; i.mode = 0o755 if typ == tarfile.DIRTYPE else 0o644
    if name != "t": i.uid, i.gid = 77, 78
    if typ == tarfile.SYMTYPE: i.linkname = "x"
    t.addfile(i, io.BytesIO(b"") if typ == tarfile.REGTYPE else None)
t.close()' "$ctx/a.tar"
cat >"$ctx/Dockerfile" <<DF
FROM busybox AS st
RUN mkdir /sd && ln -s f /sd/sl && chown -h 21:22 /sd/sl
FROM busybox
RUN ln -s /etc/passwd /l1 && chown -h 1500:1501 /l1 && ln -s x /l2 && chown -h 7:8 /l2 && chown -h 0:0 /l2 \\
 && ln -s y /l3 && chown -h 9:9 /l3 && rm /l3 && ln -s z /l3 && mkdir /d && ln -s a /d/l4 && chown -h 5:5 /d/l4 \\
 && stat -c '%n %u:%g' /l1 /d/l4 > /out
RUN stat -c '%n %u:%g' /l1 /l2 /l3 /d/l4 >/later && chown -h 42:43 /bin/sh && chown -h :44 /d/l4 \\
 && chown -h :45 /l1 && stat -c '%n %u:%g' /bin/sh /d/l4 /l1 >/later2 && ls -ln /bin/sh | awk '{ print \$3 ":" \$4 }' >/ls \\
 && find / -xdev -user 42 >/find
RUN ln -s t /$long236 && chown -h 6:6 /$long236 && ln -s t /$long250 && chown -h 6:6 /$long250 \\
 && stat -c '%u:%g' /$long236 /$long250 >/long
RUN ln -s /proc/self/root$host /x && chown -h 3:3 /x && stat -c '%u:%g' /x >/x-lstat \\
 && { chown 3:3 /x 2>/x-msg; echo \$? >/x-rc; } && { chown 3:3 /x/ 2>/dev/null; echo \$? >/xs-rc; }
COPY fd /fd
COPY --chown=7:7 fd /fd7
COPY --from=st /sd /fromst
ADD a.tar /adds/
ADD --chown=3:4 a.tar /addc/
DF
chmod -R a+rX "$ctx"

for m in subuid single; do
  case " $MODES " in *" $m "*) ;; *) continue ;; esac
  import_busybox "$m"
  out=$(userdir "out-$m" "$m")
  if ob "$m" build -t sl -o "$out" "$ctx" >"$TESTDIR/b-$m.out" 2>"$TESTDIR/b-$m.err"; then
    ok "[$m] build: chown -h of symlinks"
  else
    not_ok "[$m] build: chown -h of symlinks"; diag <"$TESTDIR/b-$m.err"; continue
  fi
  check "[$m] the image validates" oci_validate "$out" sl:latest
  rm -rf "$TESTDIR/u-$m"
  check "[$m] umoci unpacks it" umoci_unpack "$out" sl:latest "$TESTDIR/u-$m"
  r=$TESTDIR/u-$m/rootfs
  for i in 1 2 3 4 5 6 7 8 9; do
    layer_listing "$out" sl:latest "$i" >"$TESTDIR/l$i-$m"
  done
  awk '$1 == "l" { print $3, $NF }' "$TESTDIR/l1-$m" >"$TESTDIR/l1l-$m"
  printf '5:5 d/l4\n1500:1501 l1\n0:0 l2\n0:0 l3\n' >"$TESTDIR/want1"
  check_files "[$m] layer 1: chown -h's owners; 0:0 drops one; a link made again does not inherit" \
    "$TESTDIR/l1l-$m" "$TESTDIR/want1"
  check_eq "[$m] lstat in the same RUN" "$(cat "$r/out")" "$(printf '/l1 1500:1501\n/d/l4 5:5')"
  check_eq "[$m] lstat in a later RUN" "$(cat "$r/later")" \
    "$(printf '/l1 1500:1501\n/l2 0:0\n/l3 0:0\n/d/l4 5:5')"
  awk '$1 == "l" { print $3, $NF }' "$TESTDIR/l2-$m" >"$TESTDIR/l2l-$m"
  printf '42:43 bin/sh\n5:44 d/l4\n1500:45 l1\n' >"$TESTDIR/want2"
  check_files "[$m] layer 2: a link of the base image and two of an earlier layer (one in /), copied up with their new owners (chown -h :44 keeps the uid)" \
    "$TESTDIR/l2l-$m" "$TESTDIR/want2"
  check_eq "[$m] ... lstat shows them" "$(cat "$r/later2")" "$(printf '/bin/sh 42:43\n/d/l4 5:44\n/l1 1500:45')"
  check_eq "[$m] ... ls -ln" "$(cat "$r/ls")" 42:43
  check_eq "[$m] ... find -user" "$(cat "$r/find")" /bin/sh
  check_eq "[$m] layer 2: the base's link to a base file, its target untouched" \
    "$(awk '$NF == "bin/busybox"' "$TESTDIR/l2-$m")" ""
  # a link name of 236 bytes makes the longest xattr name (255); longer
  # ones are not recorded in single-ID mode
  case $m in subuid) want=6:6 ;; single) want=0:0 ;; esac
  check_eq "[$m] a 236-byte link name: recorded" "$(awk -v n="$long236" '$NF == n { print $3 }' "$TESTDIR/l3-$m")" 6:6
  check_eq "[$m] a 250-byte link name: $want" "$(awk -v n="$long250" '$NF == n { print $3 }' "$TESTDIR/l3-$m")" "$want"
  check_eq "[$m] ... lstat of both" "$(cat "$r/long")" "$(printf '6:6\n%s' "$want")"
  check_eq "[$m] a link to /proc/self/root/<host path>: chown -h gives the link its owner" \
    "$(awk '$NF == "x" { print $3, $5 }' "$TESTDIR/l4-$m")" "3:3 /proc/self/root$host"
  check_eq "[$m] ... lstat" "$(cat "$r/x-lstat")" 3:3
  check_eq "[$m] chown following it fails" "$(cat "$r/x-rc")" 1
  check_eq "[$m] ... with ENOENT (the step's /proc/self/root has no such path)" "$(cat "$r/x-msg")" \
    "chown: /x: No such file or directory"
  check_eq "[$m] chown of x/ fails" "$(cat "$r/xs-rc")" 1
  awk '$1 == "l" || $1 == "d" { print $1, $3, $NF }' "$TESTDIR/l5-$m" "$TESTDIR/l6-$m" >"$TESTDIR/lc-$m"
  printf 'd 0:0 fd\nl 0:0 fd/l\nd 7:7 fd7\nl 7:7 fd7/l\n' >"$TESTDIR/wantc"
  check_files "[$m] COPY: a forged record in the context is no owner; --chown is" "$TESTDIR/lc-$m" "$TESTDIR/wantc"
  check_eq "[$m] COPY --from keeps a symlink's owner" "$(awk '$NF == "fromst/sl" { print $1, $3 }' "$TESTDIR/l7-$m")" "l 21:22"
  awk '$1 != "d" { print $1, $3, $NF }' "$TESTDIR/l8-$m" "$TESTDIR/l9-$m" >"$TESTDIR/la-$m"
  printf 'f 77:78 adds/t/f\nl 77:78 adds/t/l\nf 3:4 addc/t/f\nl 3:4 addc/t/l\n' >"$TESTDIR/wanta"
  check_files "[$m] ADD of an archive: its symlink's owner; ADD --chown: that owner" "$TESTDIR/la-$m" "$TESTDIR/wanta"
  # no record in any layer: python's tarfile reads the pax headers
  check_eq "[$m] no user.obuild.lowner.* xattr in any layer; the context's user.keep is copied" "$(python3 -c '
import json, sys, tarfile
lay, tag = sys.argv[1], "sl:latest"
idx = json.load(open(lay + "/index.json"))
d = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][-1]
blob = lambda x: lay + "/blobs/sha256/" + x.split(":")[1]
m = json.load(open(blob(d["digest"])))
for l in m["layers"]:
    for e in tarfile.open(blob(l["digest"])).getmembers():
        for k in e.pax_headers:
            if "lowner" in k or "user.keep" in k:
                print(e.name, k)
' "$out")" "$(printf 'fd SCHILY.xattr.user.keep\nfd7 SCHILY.xattr.user.keep')"
done
# ---- rename: a link's recorded owner follows it (dpkg makes each link as
# NAME.dpkg-new, chowns it, renames it); the old name's record goes, so a
# new link there is root's; a rename that fails changes nothing ----
cat >"$ctx/Dockerfile.mv" <<'DF'
FROM busybox
RUN mkdir /m /m/sub && ln -s t /m/a && chown -h 11:12 /m/a && mv /m/a /m/b \
 && ln -s t /m/a \
 && ln -s u /m/c && chown -h 13:14 /m/c && mv /m/c /m/sub/c2 \
 && ln -s v /m/d.dpkg-new && chown -h 15:16 /m/d.dpkg-new && mv /m/d.dpkg-new /m/d \
 && ln -s w /m/e && chown -h 17:18 /m/e && touch /m/f && { mv -n /m/e /m/f; true; } \
 && ln -s x /m/g && chown -h 19:20 /m/g && { mv /m/g /nonexistent/g 2>/dev/null; true; } \
 && cd /m && ln -s y h && chown -h 21:22 h && mv h sub/h2 && cd / \
 && stat -c '%n %u:%g' /m/b /m/a /m/sub/c2 /m/d /m/e /m/f /m/g /m/sub/h2 >/mv-out
RUN mv /m/b /m/b2 && ln -s t /m/b && stat -c '%n %u:%g' /m/b2 /m/b >/mv-later
DF
# hostile renames of a recorded link: into a directory reached through a
# link to /proc/self/root/<the host directory>, and into /proc; both fail,
# and the supervisor must write no record anywhere but the step's root
printf 'RUN ln -s /proc/self/root%s /hx && ln -s z /mz && chown -h 23:24 /mz && { mv /mz /hx/z 2>/dev/null; true; } && { mv /mz /proc/z 2>/dev/null; true; } && stat -c %%u:%%g /mz >/mz-stat\n' \
  "$host" >>"$ctx/Dockerfile.mv"
chmod a+r "$ctx/Dockerfile.mv"
mv_want='/m/b 11:12
/m/a 0:0
/m/sub/c2 13:14
/m/d 15:16
/m/e 17:18
/m/f 0:0
/m/g 19:20
/m/sub/h2 21:22'
for m in subuid single; do
  case " $MODES " in *" $m "*) ;; *) continue ;; esac
  out=$(userdir "out-mv-$m" "$m")
  if ob "$m" build -f "$ctx/Dockerfile.mv" -t mv -o "$out" "$ctx" >"$TESTDIR/mv-$m.out" 2>"$TESTDIR/mv-$m.err"; then
    for i in 1 2; do
      layer_listing "$out" mv:latest "$i" | awk '$1 == "l" { print $3, $NF }' >"$TESTDIR/mv$i-$m"
    done
    check_eq "[$m] rename of recorded links: the layer's owners" "$(cat "$TESTDIR/mv1-$m")" \
      "$(printf '0:0 m/a\n11:12 m/b\n15:16 m/d\n17:18 m/e\n19:20 m/g\n13:14 m/sub/c2\n21:22 m/sub/h2')"
    check_eq "[$m] ... lstat in the step" "$(layer_file "$out" mv:latest 1 mv-out)" "$mv_want"
    check_eq "[$m] a link of a lower layer renamed: its owner; a new link of its old name: root" \
      "$(cat "$TESTDIR/mv2-$m")" "$(printf '0:0 m/b\n11:12 m/b2')"
    check_eq "[$m] renames of a recorded link through a link to the host's directory and into /proc fail: the link keeps its owner" \
      "$(layer_listing "$out" mv:latest 3 | awk '$1 == "l" { print $3, $NF }' | sort)" \
      "$(printf '0:0 hx\n23:24 mz')"
    check_eq "[$m] ... lstat in the step" "$(layer_file "$out" mv:latest 3 mz-stat)" 23:24
  else
    not_ok "[$m] rename of recorded links: the build"; diag <"$TESTDIR/mv-$m.err"
  fi
done

check_eq "[single] the host directory: owner, mode and ctime unchanged" "$(stat -c '%u:%g %a %Z' "$host")" "$host_before"
check_eq "[single] ... no xattr on it" "$(python3 -c 'import os,sys; print(os.listxattr(sys.argv[1]))' "$host")" "[]"
if [ -f "$TESTDIR/l1-subuid" ] && [ -f "$TESTDIR/l1-single" ]; then
  for i in 1 2 4 5 6 7 8 9; do
    check_files "[single] layer $i: the same entries and owners as subuid mode's" "$TESTDIR/l$i-single" "$TESTDIR/l$i-subuid"
  done
  grep -v " $long250\$" "$TESTDIR/l3-single" >"$TESTDIR/l3s"
  grep -v " $long250\$" "$TESTDIR/l3-subuid" >"$TESTDIR/l3u"
  check_files "[single] layer 3: the same as subuid mode's but the 250-byte name" "$TESTDIR/l3s" "$TESTDIR/l3u"
fi

# more recorded links than a directory's xattr space holds (ext4: one
# block): chown -h succeeds, the links it cannot record stay root's
mkdir -p "$TESTDIR/many"
printf 'FROM busybox\nRUN mkdir /m && cd /m && for i in $(seq 100 299); do ln -s target-of-link-$i link-$i; done && chown -h 5:5 link-*\nRUN ln -s t /r1 && chown -h 4:4 /r1 && mv /r1 /r2\n' \
  >"$TESTDIR/many/Dockerfile"
chmod -R a+rX "$TESTDIR/many"
m=single
out=$(userdir out-many "$m")
if ob "$m" build -q -t many -o "$out" "$TESTDIR/many" >"$TESTDIR/many.out" 2>&1; then
  layer_listing "$out" many:latest 1 | awk '$1 == "l" { print $3 }' | sort | uniq -c | awk '{ print $2, $1 }' >"$TESTDIR/many-owners"
  check "[$m] 200 links chowned in one directory: each is 5:5 or root's, at least 40 recorded" \
    sh -c "awk '\$1 != \"5:5\" && \$1 != \"0:0\" { exit 1 } \$1 == \"5:5\" { n = \$2 } END { exit !(n >= 40) }' '$TESTDIR/many-owners'"
  diag <"$TESTDIR/many-owners"
  check_eq "[$m] a link renamed after chown -h: its owner under its new name" \
    "$(layer_listing "$out" many:latest 2 | awk '$NF == "r2" { print $1, $3, $NF }')" "l 4:4 r2"
else
  not_ok "[$m] 200 links chowned in one directory"; diag <"$TESTDIR/many.out"
fi

# the copying path of COPY (past the plan's cap): no forged owner either
m=single
out=$(userdir out-copy "$m")
if as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_TEST_PLAN_MAX=1 "$OB" build -q --no-cache -t slc -o "$out" "$ctx" \
     >"$TESTDIR/c.out" 2>"$TESTDIR/c.err"; then
  layer_listing "$out" slc:latest 5 >"$TESTDIR/cc5"
  layer_listing "$out" slc:latest 6 >"$TESTDIR/cc6"
  awk '$1 == "l" || $1 == "d" { print $1, $3, $NF }' "$TESTDIR/cc5" "$TESTDIR/cc6" >"$TESTDIR/lcc"
  check_files "[$m] COPY made on disk: a forged record is no owner; --chown is" "$TESTDIR/lcc" "$TESTDIR/wantc"
  for i in 7 8 9; do
    layer_listing "$out" slc:latest $i >"$TESTDIR/cc$i"
    check_files "[$m] COPY made on disk: layer $i (COPY --from, ADD) as subuid mode's" "$TESTDIR/cc$i" "$TESTDIR/l$i-subuid"
  done
else
  not_ok "[$m] COPY made on disk: a forged record is no owner; --chown is"; diag <"$TESTDIR/c.err"
fi
done_testing
