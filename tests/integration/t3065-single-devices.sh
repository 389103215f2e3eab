#!/bin/sh
# Single-ID mode: mknod of a character or block device in a RUN step goes
# to the supervisor (src/lib/seccomp_notify.c), which makes an empty
# regular file carrying user.obuild.device; the layer writer writes it as
# the device, stat reports it as one.  The layer must be root mode's, where
# the kernel makes the device.  The step is hostile: mknod through symlinks
# out of the root, on existing names, in /proc; a context file carrying a
# forged user.obuild.device must stay a regular file in the layer.
. "$(dirname "$0")/lib.sh"

case " $MODES " in
  *" single "*) ;;
  *) skip "single-ID mode is not among the modes ($MODES)"; done_testing ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  skip "the attack checks look at the host's files as root"; done_testing
fi

# devices LAYOUT TAG N: the entries of layer N, "type mode uid:gid
# major,minor size name", then the names of the entries carrying an
# obuild xattr ("xattr NAME KEY")
devices() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, os, sys, tarfile
layout, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
idx = json.load(open(os.path.join(layout, "index.json")))
d = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][-1]
blob = lambda x: os.path.join(layout, "blobs", *x.split(":"))
m = json.load(open(blob(d["digest"])))
with tarfile.open(blob(m["layers"][n]["digest"]), "r:*") as t:
    for e in t.getmembers():
        typ = {tarfile.REGTYPE: "f", tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l", tarfile.LNKTYPE: "h",
               tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b", tarfile.FIFOTYPE: "p"}.get(e.type, "?")
        print("%s %04o %d:%d %d,%d %d %s" % (typ, e.mode, e.uid, e.gid, e.devmajor, e.devminor, e.size, e.name))
        for k in e.pax_headers:
            if "obuild" in k:
                print("xattr %s %s" % (e.name, k))
PY
}

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox
RUN mknod /dev/../mydev c 1 3 && mkdir /d && mknod /d/blk b 7 0 && chmod 640 /d/blk \
 && mknod -m 600 /fifo p && mknod -m 000 /closed c 1 7 && ls -l /mydev /d/blk >/out
RUN test -c /mydev && test -b /d/blk && test ! -f /mydev && stat -c '%F %t:%T %s %a' /mydev /d/blk >/later \
 && chmod 600 /mydev && cd /d && mknod -m 0660 rel c 4 5 && chown 5:6 rel && stat -c '%u:%g %F' rel >/rel-stat \
 && umask 077 && mknod /masked b 8 1
USER 1000:1001
RUN mknod /tmp/u c 1 5
DF
chmod -R a+rX "$ctx"

m=single
import_busybox "$m"
out=$(userdir "out-$m" "$m")
if ob "$m" build -t dev -o "$out" "$ctx" >"$TESTDIR/b-$m.out" 2>"$TESTDIR/b-$m.err"; then
  ok "[$m] build: mknod of devices and a fifo"
else
  not_ok "[$m] build: mknod of devices and a fifo"; diag <"$TESTDIR/b-$m.err"
fi
devices "$out" dev:latest 1 | grep -v -e '^d ' -e ' out$' | sort -k6 >"$TESTDIR/l1-$m"
printf '%s\n' 'b 0640 0:0 7,0 0 d/blk' 'p 0600 0:0 0,0 0 fifo' 'c 0644 0:0 1,3 0 mydev' \
  'c 0000 0:0 1,7 0 closed' | sort -k6 >"$TESTDIR/l1-want"
check_files "[$m] layer 1: /mydev char 1,3, /d/blk block 7,0 0640, the fifo, a mode 000 device; no obuild xattr" \
  "$TESTDIR/l1-$m" "$TESTDIR/l1-want"
devices "$out" dev:latest 2 | grep -v '^d ' | sort -k6 >"$TESTDIR/l2-$m"
printf '%s\n' 'b 0600 0:0 8,1 0 masked' 'c 0600 0:0 1,3 0 mydev' 'c 0660 5:6 4,5 0 d/rel' \
  'f 0644 0:0 0,0 62 later' 'f 0644 0:0 0,0 27 rel-stat' | sort -k6 >"$TESTDIR/l2-want"
check_files "[$m] layer 2: chmod of a device of a lower layer, mknod relative to the cwd, chown, the umask" \
  "$TESTDIR/l2-$m" "$TESTDIR/l2-want"
check_eq "[$m] USER 1000:1001: the device the step made is the user's, as its other files" \
  "$(devices "$out" dev:latest 3 | grep -v '^d ')" 'c 0644 1000:1001 1,5 0 tmp/u'
check "[$m] the image validates" oci_validate "$out" dev:latest
rm -rf "$TESTDIR/u-$m"
umoci_unpack "$out" dev:latest "$TESTDIR/u-$m" 2>"$TESTDIR/u-$m.err" || diag <"$TESTDIR/u-$m.err"
check "[$m] umoci unpacks it (rootless)" test -f "$TESTDIR/u-$m/rootfs/out"
r=$TESTDIR/u-$m/rootfs
check "[$m] ls -l in the step: /mydev a character device 1, 3" grep -q '^crw-r--r-- .* 1, *3 .*/mydev$' "$r/out"
check "[$m] ls -l in the step: /d/blk a block device 7, 0" grep -q '^brw-r----- .* 7, *0 .*/d/blk$' "$r/out"
check_eq "[$m] test -c, test -b and stat in a later step" "$(cat "$r/later")" \
  "$(printf 'character special file 1:3 0 644\nblock special file 7:0 0 640')"
check_eq "[$m] stat of a device the step chowned: the owner recorded" "$(cat "$r/rel-stat")" \
  "5:6 character special file"

# the copy snapshotter (no overlayfs): the step's root is a plain directory
out=$(userdir "out-copy" "$m")
if ob "$m" build --no-cache --snapshotter=copy -t dev-copy -o "$out" "$ctx" >"$TESTDIR/c.out" 2>"$TESTDIR/c.err"; then
  devices "$out" dev-copy:latest 1 | grep -v -e '^d ' -e ' out$' | sort -k6 >"$TESTDIR/l1-copy"
  devices "$out" dev-copy:latest 2 | grep -v '^d ' | sort -k6 >"$TESTDIR/l2-copy"
  check_files "[$m] --snapshotter=copy: layer 1 the same" "$TESTDIR/l1-copy" "$TESTDIR/l1-want"
  check_files "[$m] --snapshotter=copy: layer 2 the same" "$TESTDIR/l2-copy" "$TESTDIR/l2-want"
  check_eq "[$m] --snapshotter=copy: layer 3 the same" "$(devices "$out" dev-copy:latest 3 | grep -v '^d ')" \
    'c 0644 1000:1001 1,5 0 tmp/u'
else
  not_ok "[$m] --snapshotter=copy: the build"; diag <"$TESTDIR/c.err"
fi

# no user notification (as on Linux < 5.0): mknod succeeds without effect,
# as before
out=$(userdir "out-nonotify" "$m")
printf 'FROM busybox\nRUN mknod /nn c 1 3 && test ! -e /nn && touch /made\n' >"$ctx/Dockerfile.nn"
if as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_TEST_NO_SECCOMP_NOTIFY=1 "$OB" build --no-cache -f "$ctx/Dockerfile.nn" \
     -t nn -o "$out" "$ctx" >"$TESTDIR/n.out" 2>"$TESTDIR/n.err"; then
  check_eq "[$m] without user notification: mknod succeeds, nothing made" \
    "$(devices "$out" nn:latest 1)" 'f 0644 0:0 0,0 0 made'
else
  not_ok "[$m] without user notification: mknod succeeds, nothing made"; diag <"$TESTDIR/n.err"
fi

# The reference: root mode's RUN cannot mknod (an identity-mapped user
# namespace, doc/security.md), but root mode's ADD of a tarball holding
# the same devices makes real ones in the step's upper directory: the
# layer writer's entries for them must be the placeholders' entries.
if case " $MODES " in *" root "*) true ;; *) false ;; esac; then
  python3 - "$ctx/devs.tar" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for name, typ, mode, ma, mi in (("d", tarfile.DIRTYPE, 0o755, 0, 0), ("mydev", tarfile.CHRTYPE, 0o644, 1, 3),
                                    ("d/blk", tarfile.BLKTYPE, 0o640, 7, 0), ("fifo", tarfile.FIFOTYPE, 0o600, 0, 0),
                                    ("closed", tarfile.CHRTYPE, 0o000, 1, 7)):
        i = tarfile.TarInfo(name); i.type = typ; i.mode = mode; i.devmajor = ma; i.devminor = mi
        t.addfile(i)
PY
  chmod a+r "$ctx/devs.tar"
  printf 'FROM busybox\nADD devs.tar /\n' >"$ctx/Dockerfile.ref"
  import_busybox root
  ref=$(userdir out-ref root)
  if ob root build -f "$ctx/Dockerfile.ref" -t ref -o "$ref" "$ctx" >"$TESTDIR/r.out" 2>"$TESTDIR/r.err"; then
    devices "$ref" ref:latest 1 | grep -v '^d ' | sort -k6 >"$TESTDIR/l1-ref"
    check_files "[single] layer 1's devices and fifo as root mode's real ones (ADD of a tarball)" \
      "$TESTDIR/l1-$m" "$TESTDIR/l1-ref"
  else
    not_ok "[root] reference build (ADD of a tarball holding devices)"; diag <"$TESTDIR/r.err"
  fi
  # Rootless, the unpacker cannot mknod either: it makes the same
  # placeholders, so an archive's devices reach the layer (ADD), survive
  # --squash, and a base image's devices, unpacked from its blob, are there
  # for later steps (stat shows them in single-ID mode)
  printf 'FROM busybox\nADD devs.tar /\nRUN touch /x\n' >"$ctx/Dockerfile.squash"
  chmod a+r "$ctx/Dockerfile.squash"
  for rm in $MODES; do
    [ "$rm" = root ] && continue
    import_busybox "$rm"
    o=$(userdir "out-add-$rm" "$rm")
    if ob "$rm" build -f "$ctx/Dockerfile.ref" -t addref -o "$o" "$ctx" >"$TESTDIR/a-$rm.out" 2>"$TESTDIR/a-$rm.err"; then
      devices "$o" addref:latest 1 | grep -v '^d ' | sort -k6 >"$TESTDIR/l1-add-$rm"
      check_files "[$rm] ADD of a tarball holding devices: the layer is root mode's" \
        "$TESTDIR/l1-add-$rm" "$TESTDIR/l1-ref"
    else
      not_ok "[$rm] ADD of a tarball holding devices: the build"; diag <"$TESTDIR/a-$rm.err"
    fi
    if ob "$rm" build --squash -f "$ctx/Dockerfile.squash" -t sq -o "$o" "$ctx" >"$TESTDIR/q-$rm.out" 2>"$TESTDIR/q-$rm.err"; then
      devices "$o" sq:latest 1 | grep -v -e '^d ' -e ' x$' | sort -k6 >"$TESTDIR/sq-$rm"
      check_files "[$rm] --squash keeps the devices of the layers it squashes" \
        "$TESTDIR/sq-$rm" "$TESTDIR/l1-ref"
    else
      not_ok "[$rm] --squash of a layer holding devices: the build"; diag <"$TESTDIR/q-$rm.err"
    fi
    # a fresh store: the base comes from the layout, unpacked from its blob
    printf 'FROM oci:%s:addref:latest\nRUN chmod 600 /mydev && ls -ln /mydev /d/blk >/ls\n' "$o" >"$ctx/Dockerfile.lower-$rm"
    chmod a+r "$ctx/Dockerfile.lower-$rm"
    o2=$(userdir "out-lower-$rm" "$rm")
    if as "$rm" env OBUILD_ROOT="$(userdir "store-lower-$rm" "$rm")" "$OB" build -f "$ctx/Dockerfile.lower-$rm" -t low -o "$o2" "$ctx" \
      >"$TESTDIR/w-$rm.out" 2>"$TESTDIR/w-$rm.err"; then
      check_eq "[$rm] a base image's device a step chmods: the device, in the step's layer" \
        "$(devices "$o2" low:latest 2 | grep -e '^[cbf] ' | grep -v ' ls$')" "c 0600 0:0 1,3 0 mydev"
      if [ "$rm" = single ]; then
        layer_file "$o2" low:latest 2 ls >"$TESTDIR/ls-$rm"
        check "[$rm] ... and ls -l in the step shows the base image's devices" \
          sh -c "grep -q '^crw------- .* 1, *3 .*/mydev\$' '$TESTDIR/ls-$rm' && grep -q '^brw-r----- .* 7, *0 .*/d/blk\$' '$TESTDIR/ls-$rm'"
      fi
    else
      not_ok "[$rm] a base image holding devices, from its layout: the build"; diag <"$TESTDIR/w-$rm.err"
    fi
  done
else
  skip "no root mode: no reference for the device entries"
fi

# ---- a hostile step (single-ID mode) ----
m=single
host=$TESTDIR/host
mkdir -p "$host" && chown "$T_USER" "$host"
cat >"$ctx/Dockerfile.attack" <<DF
FROM busybox
RUN mkdir -p /tmp; ln -s /proc/self/root$host /x; mknod /x/magic c 1 3 2>/r-magic-msg; echo \$? >/r-magic; \\
    ln -s ../../../../../../../../../..$host /y; mknod /y/rel c 1 3 2>/r-rel-msg; echo \$? >/r-rel; \\
    ln -s $host /z; mknod /z/abs c 1 3 2>/r-abs-msg; echo \$? >/r-abs; \\
    mknod /twice c 1 3; mknod /twice c 1 3 2>/r-exist-msg; echo \$? >/r-exist; \\
    mknod /bin/busybox c 1 3 2>/dev/null; echo \$? >/r-lower; \\
    ln -s /nowhere /dangling; mknod /dangling c 1 3 2>/dev/null; echo \$? >/r-dangling; \\
    mknod /nodir/dev c 1 3 2>/r-enoent-msg; echo \$? >/r-enoent; \\
    mknod /bin/busybox/dev c 1 3 2>/r-notdir-msg; echo \$? >/r-notdir; \\
    mknod /proc/dev c 1 3 2>/r-proc-msg; echo \$? >/r-proc; \\
    mknod /sys/dev c 1 3 2>/dev/null; echo \$? >/r-sys; \\
    mknod /newname/ c 1 3 2>/r-slash-msg; echo \$? >/r-slash; \\
    mknod /tmp/. c 1 3 2>/r-dot-msg; echo \$? >/r-dot
RUN --mount=type=bind,target=/ctx mknod /ctx/dev c 1 3 2>/r-rofs-msg; echo \$? >/r-rofs
DF
out=$(userdir "out-attack" "$m")
if ob "$m" build -f "$ctx/Dockerfile.attack" -t attack -o "$out" "$ctx" >"$TESTDIR/a.out" 2>"$TESTDIR/a.err"; then
  ok "[$m] hostile mknod calls: the build finishes"
else
  not_ok "[$m] hostile mknod calls: the build finishes"; diag <"$TESTDIR/a.err"
fi
check_eq "[$m] nothing made in the host's directory the symlinks name" "$(ls -A "$host")" ""
check "[$m] nothing made in the context" test ! -e "$ctx/dev"
rm -rf "$TESTDIR/ua"
umoci_unpack "$out" attack:latest "$TESTDIR/ua" 2>"$TESTDIR/ua.err" || diag <"$TESTDIR/ua.err"
r=$TESTDIR/ua/rootfs
check_eq "[$m] mknod through /proc/self/root (a magic link): fails" "$(cat "$r/r-magic")" 1
check_eq "[$m] mknod through ../../.. out of the root: fails (the host's directory is not in the root)" "$(cat "$r/r-rel")" 1
check "[$m] ... with ENOENT" grep -q 'No such file or directory' "$r/r-rel-msg"
check_eq "[$m] mknod through an absolute symlink to the host's directory: fails" "$(cat "$r/r-abs")" 1
check_eq "[$m] mknod of an existing name: fails" "$(cat "$r/r-exist")" 1
check "[$m] ... with EEXIST" grep -q 'File exists' "$r/r-exist-msg"
check_eq "[$m] mknod of a file of a lower layer: fails" "$(cat "$r/r-lower")" 1
check_eq "[$m] mknod of a dangling symlink: fails (not followed)" "$(cat "$r/r-dangling")" 1
check_eq "[$m] mknod in a missing directory: fails" "$(cat "$r/r-enoent")" 1
check "[$m] ... with ENOENT" grep -q 'No such file or directory' "$r/r-enoent-msg"
check_eq "[$m] mknod below a file: fails" "$(cat "$r/r-notdir")" 1
check "[$m] ... with ENOTDIR" grep -q 'Not a directory' "$r/r-notdir-msg"
check_eq "[$m] mknod in /proc: fails" "$(cat "$r/r-proc")" 1
check "[$m] ... with EPERM" grep -q 'Operation not permitted' "$r/r-proc-msg"
check_eq "[$m] mknod in /sys: fails" "$(cat "$r/r-sys")" 1
check_eq "[$m] mknod of a new name with a trailing slash: fails" "$(cat "$r/r-slash")" 1
check "[$m] ... with ENOENT, as the kernel" grep -q 'No such file or directory' "$r/r-slash-msg"
check_eq "[$m] mknod of /tmp/.: fails" "$(cat "$r/r-dot")" 1
check "[$m] ... with EEXIST" grep -q 'File exists' "$r/r-dot-msg"
check_eq "[$m] mknod on a read-only bind of the context: fails" "$(cat "$r/r-rofs")" 1
check "[$m] ... with EROFS" grep -q 'Read-only file system' "$r/r-rofs-msg"
devices "$out" attack:latest 1 >"$TESTDIR/al1"
check_eq "[$m] the layer's devices: /twice only" "$(grep -e '^[cb] ' -e '^xattr ' "$TESTDIR/al1")" \
  'c 0644 0:0 1,3 0 twice'
check "[$m] ... the image's /bin/busybox untouched" sh -c "! grep -q ' bin/busybox\$' '$TESTDIR/al1'"
check "[$m] ... the dangling symlink stays one" grep -q '^l .* dangling$' "$TESTDIR/al1"

# ---- COPY --from of a stage's devices: devices again ----
cat >"$ctx/Dockerfile.from" <<'DF'
FROM busybox AS a
RUN mknod /mydev c 1 3 && mkdir /dd && mknod /dd/blk b 7 0 && echo x >/dd/plain && chown 4:5 /dd/blk
FROM busybox
COPY --from=a /mydev /copied
COPY --from=a /dd /dd2
COPY --from=a --chown=7:8 --chmod=600 /dd/blk /blk3
RUN test -c /copied && test -b /dd2/blk && test -b /blk3
DF
for how in stream copy; do
  out=$(userdir "out-from-$how" "$m")
  case $how in stream) nostream= ;; copy) nostream=1 ;; esac
  if as "$m" env OBUILD_ROOT="$(store "$m")" ${nostream:+OBUILD_TEST_NO_COPY_STREAM=1} "$OB" build --no-cache \
       -f "$ctx/Dockerfile.from" -t from -o "$out" "$ctx" >"$TESTDIR/fr.out" 2>"$TESTDIR/fr.err"; then
    check_eq "[$m] COPY --from ($how) of devices a stage made: devices, owners and modes as asked" \
      "$(for i in 1 2 3; do devices "$out" from:latest $i; done | grep -v '^d ')" \
      "$(printf '%s\n' 'c 0644 0:0 1,3 0 copied' 'b 0644 4:5 7,0 0 dd2/blk' 'f 0644 0:0 0,0 2 dd2/plain' 'b 0600 7:8 7,0 0 blk3')"
  else
    not_ok "[$m] COPY --from ($how) of devices a stage made: the build"; diag <"$TESTDIR/fr.err"
  fi
done

# ---- a context file carrying a forged user.obuild.device ----
printf 'data' >"$ctx/forged"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.obuild.device", b"c 1:3")' "$ctx/forged"
chmod a+r "$ctx/forged"
printf 'FROM busybox\nCOPY forged /forged\n' >"$ctx/Dockerfile.forged"
for m in root single; do
  case " $MODES " in *" $m "*) ;; *) continue ;; esac
  for how in stream copy; do
    out=$(userdir "out-forged-$m-$how" "$m")
    case $how in stream) nostream= ;; copy) nostream=1 ;; esac
    if as "$m" env OBUILD_ROOT="$(store "$m")" ${nostream:+OBUILD_TEST_NO_COPY_STREAM=1} "$OB" build --no-cache \
         -f "$ctx/Dockerfile.forged" -t forged -o "$out" "$ctx" >"$TESTDIR/f.out" 2>"$TESTDIR/f.err"; then
      check_eq "[$m] COPY ($how) of a context file with a forged user.obuild.device: a regular file, no obuild xattr" \
        "$(devices "$out" forged:latest 1)" "f 0644 0:0 0,0 4 forged"
    else
      not_ok "[$m] COPY ($how) of a context file with a forged user.obuild.device: the build"; diag <"$TESTDIR/f.err"
    fi
  done
done
# ---- ADD of an archive whose pax headers carry obuild's xattrs ----
# (forged: an owner, a device, a symlink owner's record; the entries' own
# uid/gid are 0) -- none of them may reach the layer as such
python3 - "$ctx/forged.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, typ=tarfile.REGTYPE, data=b"", pax=None, link=""):
        i = tarfile.TarInfo(name); i.type = typ; i.mode = 0o644 if typ != tarfile.DIRTYPE else 0o755
        i.uid = i.gid = 0; i.mtime = 1700000000; i.size = len(data); i.linkname = link
        i.pax_headers = pax or {}
        t.addfile(i, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
    import hashlib
    fp = hashlib.sha256(b"own").hexdigest()[:16]  # a record that would match the link
    add("fd", tarfile.DIRTYPE, pax={"SCHILY.xattr.user.obuild.lowner.l": "7:7:" + fp})
    add("fd/dev", data=b"x", pax={"SCHILY.xattr.user.obuild.device": "c 1:3"})
    add("fd/own", data=b"y", pax={"SCHILY.xattr.user.obuild.owner": "7:7"})
    add("fd/l", tarfile.SYMTYPE, link="own")
PY
chmod a+r "$ctx/forged.tar"
printf 'FROM busybox\nADD forged.tar /\nRUN stat -c "%%n %%u:%%g %%F" /fd/own /fd/dev >/st && stat -c "%%n %%u:%%g" /fd/l >>/st\n' >"$ctx/Dockerfile.forgedtar"
for m in $MODES; do
  import_busybox "$m"
  out=$(userdir "out-forgedtar-$m" "$m")
  if ob "$m" build --no-cache -f "$ctx/Dockerfile.forgedtar" -t forgedtar -o "$out" "$ctx" >"$TESTDIR/ft.out" 2>"$TESTDIR/ft.err"; then
    check_eq "[$m] ADD of an archive with forged obuild xattrs: plain files and link, root's, no obuild xattr" \
      "$(devices "$out" forgedtar:latest 1)" "$(printf '%s\n' 'd 0755 0:0 0,0 0 fd' 'f 0644 0:0 0,0 1 fd/dev' 'l 0777 0:0 0,0 0 fd/l' 'f 0644 0:0 0,0 1 fd/own')"
    check_eq "[$m] ADD of an archive with forged obuild xattrs: what stat says in the next step" \
      "$(layer_file "$out" forgedtar:latest 2 st)" "$(printf '%s\n' '/fd/own 0:0 regular file' '/fd/dev 0:0 regular file' '/fd/l 0:0')"
  else
    not_ok "[$m] ADD of an archive with forged obuild xattrs: the build"; diag <"$TESTDIR/ft.err"
  fi
done
done_testing
