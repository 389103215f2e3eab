#!/usr/bin/env python3
"""make-seeds.py: (re)write the seed corpora of the fuzz harnesses under
tests/fuzz/corpus/<harness>/.  Deterministic: running it again gives the same
files, which are committed (each corpus stays under 20 KB).  The tar seeds
are larger (a header is 512 bytes), so they are not committed:
`make-seeds.py --tar DIR` writes them into DIR, which scripts/fuzz.sh does
for the copy of the corpus it runs on.

  fuzz_dockerfile   the Dockerfiles of tests/compat plus a few that use the
                    rarer syntax (directives, heredocs, ONBUILD, expansions)
  fuzz_ignore       .dockerignore texts, a NUL, then path names
  fuzz_tar_extract  small tar streams: whiteouts, hardlinks, symlinks, pax
                    and GNU long names, devices, hostile names, compression
  fuzz_image_json   OCI layouts in the harness's format (index.json, then
                    blobs separated by "----" lines; @N / #N stand for the
                    digest / size of part N)
"""
import bz2, gzip, hashlib, io, json, lzma, os, shutil, sys, tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def reset(name):
    d = os.path.join(CORPUS, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- tar layers ----
def tar_bytes(entries, fmt=tarfile.GNU_FORMAT):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = b.getvalue()
    # tarfile pads to 10 KiB records; one end-of-archive block pair is enough
    end = len(raw)
    while end >= 512 and raw[end - 512:end] == b"\0" * 512:
        end -= 512
    return raw[:end] + b"\0" * 1024


def ent(name, typ=tarfile.REGTYPE, data=b"", mode=0o644, link="", uid=0, gid=0, pax=None, dev=(0, 0)):
    ti = tarfile.TarInfo(name)
    ti.type = typ
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.mtime = 1700000000
    ti.linkname = link
    ti.devmajor, ti.devminor = dev
    if pax:
        ti.pax_headers = pax
    if typ == tarfile.REGTYPE:
        ti.size = len(data)
        return ti, data
    return ti, None


DIR, SYM, LNK = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE

def tar_seeds(d):
    basic = tar_bytes([ent("etc/", DIR, mode=0o755), ent("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
                       ent("bin/", DIR), ent("bin/su", data=b"#!\n", mode=0o4755, uid=1000, gid=1000),
                       ent("bin/sh", SYM, link="busybox"), ent("bin/busybox", data=b"\x7fELF"),
                       ent("bin/ash", LNK, link="bin/busybox"), ent("ro/", DIR, mode=0o500),
                       ent("ro/f", data=b"x", mode=0o400)])
    write(d, "basic.tar", basic)
    write(d, "basic.tar.gz", gzip.compress(basic, mtime=0))
    write(d, "basic.tar.bz2", bz2.compress(basic))
    write(d, "basic.tar.xz", lzma.compress(basic))
    write(d, "whiteouts.tar", tar_bytes([ent("etc/.wh.passwd"), ent("dir/", DIR), ent("dir/.wh..wh..opq"),
                                         ent("dir/new", data=b"n"), ent(".wh.evil"), ent("sub/.wh.dest"),
                                         ent("dir/sub/.wh..wh..opq")]))
    write(d, "pax.tar", tar_bytes([ent("p/" + "long" * 40, data=b"l", pax={"mtime": "1700000000.123456789",
                                                                           "SCHILY.xattr.user.k": "v",
                                                                           "SCHILY.xattr.security.capability": "\x01"}),
                                   ent("lnk", SYM, link="t/" + "x" * 150),
                                   ent("uidpax", data=b"", pax={"uid": "70000", "gid": "70000", "uname": "u"})],
                                  fmt=tarfile.PAX_FORMAT))
    write(d, "gnu-long.tar", tar_bytes([ent("g/" + "n" * 120, data=b"g"), ent("hl", LNK, link="g/" + "n" * 120)]))
    write(d, "devices.tar", tar_bytes([ent("dev/", DIR), ent("dev/null", tarfile.CHRTYPE, dev=(1, 3)),
                                       ent("dev/sda", tarfile.BLKTYPE, dev=(8, 0)),
                                       ent("dev/fifo", tarfile.FIFOTYPE)]))
    # the harness's lower layer has evil -> ../canary, abs -> <canary>, up -> ..,
    # dir/evil -> ../../canary; extraction stops at the first bad entry, so
    # those come last or alone
    write(d, "links-up.tar", tar_bytes([ent("up/x", data=b"c"), ent("./", DIR, mode=0o777),
                                        ent("up", SYM, link="/"), ent("up/etc/x", data=b"c"),
                                        ent("/abs/file", data=b"a")]))
    write(d, "links-canary.tar", tar_bytes([ent("dir/evil/y", data=b"c"), ent("evil/x", data=b"c"),
                                            ent("abs/x", data=b"c")]))
    write(d, "links-new.tar", tar_bytes([ent("lnk", SYM, link="/tmp"), ent("h2", LNK, link="evil"),
                                         ent("lnk/x", data=b"x")]))
    write(d, "dotdot.tar", tar_bytes([ent("ok", data=b"o"), ent("a/../../escape", data=b"e")]))
    write(d, "hardlink-out.tar", tar_bytes([ent("h", LNK, link="../../etc/passwd")]))
    write(d, "replace.tar", tar_bytes([ent("a", data=b"file"), ent("a/", DIR), ent("a/b", data=b"b"),
                                       ent("a", data=b"again"), ent("s", SYM, link="a"), ent("s", LNK, link="a"),
                                       ent("etc/passwd/", DIR), ent("d/", DIR, mode=0), ent("d/f", data=b"x")]))
    sparse_data = b"1\n0\n5\n".ljust(512, b"\0") + b"hello"
    write(d, "sparse.tar", tar_bytes([ent("GNUSparseFile.0/s", data=sparse_data,
                                          pax={"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                                               "GNU.sparse.name": "s", "GNU.sparse.realsize": "1048576"})],
                                     fmt=tarfile.PAX_FORMAT))


def committed():
    # ---- Dockerfiles ----
    d = reset("fuzz_dockerfile")
    compat = os.path.join(TOP, "tests", "compat")
    for case in sorted(os.listdir(compat)):
        p = os.path.join(compat, case, "Dockerfile")
        if os.path.isfile(p):
            with open(p, "rb") as f:
                write(d, "compat-" + case, f.read())
    write(d, "directives", "# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nRUN echo a `\n  b\n"
          "COPY --chown=1:1 --chmod=644 [\"a b\", \"/c/\"]\n")
    write(d, "expansions", "ARG v=1\nFROM busybox:${v:-latest} AS base\nARG a\nENV x=${a:+set} y=${a:-unset} "
          "z=\"${b-q}\" w='${a}'\nENV p=${path#*/} q=${path##*/} r=${path%/*} s=${path%%/*} t=${path/usr/opt} "
          "u=${path//o/0}\nWORKDIR /w/$x/${y}\nUSER ${a}:${b}\nLABEL \"k k\"=\"v $x\" k2=v\\ 2\n"
          "ENV nest=${a:-${b:-${c:-deep}}}\nEXPOSE ${port:-80}/tcp 443\nSTOPSIGNAL SIG${sig:-TERM}\n")
    write(d, "heredocs", "FROM scratch\nRUN <<EOF bash\nset -e\necho $HOME\nEOF\nRUN <<-'X' cat\n\tno $expansion\n\tX\n"
          "COPY <<one.txt <<\"two.txt\" /dst/\n1 $a\none.txt\n2\ntwo.txt\nRUN 3<<A cat <&3\nx\nA\n")
    write(d, "onbuild-healthcheck", "FROM scratch\nONBUILD RUN echo hi\nONBUILD COPY --from=x a b\n"
          "HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD [\"true\"]\nHEALTHCHECK NONE\n"
          "SHELL [\"/bin/sh\", \"-c\"]\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nMAINTAINER someone\n"
          "ENTRYPOINT [\"/bin/sh\"]\nCMD echo ${HOME}\nADD --checksum=sha256:00 --keep-git-dir=true x /y\n"
          "RUN --mount=type=cache,target=/c,id=\"a b\" --network=none --security=insecure true\n")
    write(d, "continuations", "FROM scratch\n# comment\nRUN a \\\n# inner comment\n  b \\\n\n  c\n"
          "ENV A=1 \\\n    B=2\nCOPY a \\\n b\nENV single value with spaces\nARG x=\"q\" y='z' w\n")

    # ---- .dockerignore ----
    d = reset("fuzz_ignore")
    with open(os.path.join(compat, "037-dockerignore", ".dockerignore"), "rb") as f:
        write(d, "compat-037", f.read() + b"\0keep.log\nsub/keep-too.log\nsecret/x\ndocs/a/b/draft1\na.tmp\n")
    write(d, "doublestar", "**\n!**/*.go\n**/vendor/**\n/abs/path\n./rel/../x\n\0a/b.go\nvendor/x/y\nabs/path/z\nx\n")
    write(d, "classes", "[a-c]*.txt\n[^x]?\n\\*literal\nfile[\\]]\n*/*/deep\n# comment\n  spaced  \n\0b.txt\nq1\n*literal\nfile]\na/b/deep\n")
    write(d, "exceptions", "*\n!Dockerfile\n!src\nsrc/**/*.tmp\n!src/keep.tmp\n\0Dockerfile\nsrc/a.tmp\nsrc/keep.tmp\nother\n")
    write(d, "nested-globs", "**/build/**/*.o\nsrc/**/test*/**/*_test.go\n*.min.*\n!**/keep*/**\n\0"
          "src/a/b/test1/c/d/x_test.go\nbuild/x/y/z/w.o\nlib/keep1/deep/er/file\napp.min.js\n")
    write(d, "bad", "ok\n[\n")
    write(d, "noseparator", "*.log\n!important.log\nbuild/\n")


    # ---- OCI layouts ----
    def js(o):
        return json.dumps(o, sort_keys=True, separators=(",", ":"))


    def layout(*parts):
        return b"\n----\n".join(p.encode() if isinstance(p, str) else p for p in parts)


    MT_M = "application/vnd.oci.image.manifest.v1+json"
    MT_I = "application/vnd.oci.image.index.v1+json"
    MT_C = "application/vnd.oci.image.config.v1+json"
    REF = "org.opencontainers.image.ref.name"
    small_layer = tar_bytes([ent("hello", data=b"hi\n")])
    cfg = js({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": ["@3"]},
              "history": [{"created_by": "x"}, {"created_by": "y", "empty_layer": True}]})
    man = js({"schemaVersion": 2, "mediaType": MT_M, "config": {"mediaType": MT_C, "digest": "@2", "size": "#2"},
              "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "@3", "size": "#3"}]})
    # sizes are numbers: "#2" in quotes is written without them
    man = man.replace('"#2"', "#2").replace('"#3"', "#3")
    idx = js({"schemaVersion": 2, "manifests": [{"mediaType": MT_M, "digest": "@1", "size": "#1",
                                                 "annotations": {REF: "latest"}}]}).replace('"#1"', "#1")
    d = reset("fuzz_image_json")
    write(d, "single", layout(idx, man, cfg, small_layer))
    nested = js({"schemaVersion": 2, "mediaType": MT_I, "manifests": [
        {"mediaType": MT_M, "digest": "@3", "size": "#3", "platform": {"architecture": "arm64", "os": "linux",
                                                                       "variant": "v8"}},
        {"mediaType": MT_M, "digest": "@2", "size": "#2", "platform": {"architecture": "amd64", "os": "linux"}}]})
    nested = nested.replace('"#2"', "#2").replace('"#3"', "#3")
    top = js({"schemaVersion": 2, "manifests": [{"mediaType": MT_I, "digest": "@1", "size": "#1",
                                                 "annotations": {REF: "latest"}}]}).replace('"#1"', "#1")
    m2 = man.replace("@2", "@4").replace("#2", "#4").replace("@3", "@5").replace("#3", "#5")
    c2 = cfg.replace("@3", "@5")
    write(d, "multiplatform", layout(top, nested, m2, m2, c2, small_layer))
    docker = js({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                 "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "@2",
                            "size": "#2"},
                 "layers": []}).replace('"#2"', "#2")
    empty_cfg = js({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    write(d, "docker-empty", layout(idx, docker, empty_cfg))
    write(d, "two-tags", layout(js({"schemaVersion": 2, "manifests": [
        {"mediaType": MT_M, "digest": "@1", "size": 1, "annotations": {REF: "a:1"}},
        {"mediaType": MT_M, "digest": "@1", "size": 1, "annotations": {REF: "b"}},
        {"mediaType": MT_M, "digest": "sha256:" + "0" * 64, "size": 0}]}), man, cfg, small_layer))
    write(d, "config-only", cfg.replace("@3", "sha256:" + "a" * 64))
    write(d, "schema1", js({"schemaVersion": 1, "name": "x", "fsLayers": []}))

    for name in sorted(os.listdir(CORPUS)):
        p = os.path.join(CORPUS, name)
        size = sum(os.path.getsize(os.path.join(p, f)) for f in os.listdir(p))
        print("%-18s %3d files %6d bytes" % (name, len(os.listdir(p)), size))
        if size > 20 * 1024:
            sys.exit("make-seeds.py: corpus %s is over 20 KB" % name)


if len(sys.argv) == 3 and sys.argv[1] == "--tar":
    os.makedirs(sys.argv[2], exist_ok=True)
    tar_seeds(sys.argv[2])
elif len(sys.argv) == 1:
    committed()
else:
    sys.exit("usage: make-seeds.py [--tar DIR]")
