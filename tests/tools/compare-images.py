#!/usr/bin/env python3
"""compare-images.py [OPTIONS] A B

Compare two images stored in OCI image layouts and print what differs.
A and B are LAYOUT-DIR[:TAG] (an "oci:" prefix is accepted; the TAG is the
org.opencontainers.image.ref.name annotation, needed when the layout holds
more than one image).

The final file trees are rebuilt by reading the layer tars directly (so the
owners recorded in the layers are seen as they are, whoever runs this) and
applying the OCI whiteouts (.wh.NAME) and opaque markers (.wh..wh..opq) layer
by layer.  For every path the type, the permission bits (setuid, setgid and
sticky included), uid/gid, size, sha256 of the content, symlink target,
device numbers, hardlink grouping and xattrs are compared.  Times are not.

The config fields that Docker defines are compared: Env, Cmd, Entrypoint,
WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal, Healthcheck,
OnBuild, Shell (and, at the top level, os, architecture, author).  A field
that is absent, null or empty ([] {} "") on one side equals an absent one on
the other.  Env is compared as a map (order of distinct names ignored).

A and B may hold OCI or Docker schema 2 manifests.  COMPARE_IMAGES_CACHE=DIR
caches the parsed layers there, by digest.

Options:
  --ignore-path PATTERN   ignore paths matching the fnmatch PATTERN (absolute,
                          e.g. /etc/hosts or /run/*) and everything below them
  --ignore-extra PATH     ignore PATH when it exists on one side only and is an
                          empty regular file or an empty directory (what a
                          builder leaves behind as a mount point)
  --ignore-field NAME     ignore a config field (Labels, Env, ...) or one key
                          of it: Labels.KEY, Env.NAME, ExposedPorts.80/tcp
  --ignore-owner PATTERN  do not compare uid/gid of the paths matching PATTERN
  --ignore-mode PATTERN   do not compare the permission bits of the paths
                          matching PATTERN (not below them: use /d/* too)
  --want-field NAME=JSON  A's config field NAME (or NAME.KEY, or a top-level
                          field) must equal JSON (a string if not JSON): to
                          check what a comparison ignores
  --list                  print the file tree and config of A and exit
  -q                      print nothing, only set the exit status
Exit status: 0 same, 1 different, 2 usage or read error.
"""
import fnmatch
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile

DOCKER_FIELDS = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User",
                 "ExposedPorts", "Volumes", "Labels", "StopSignal",
                 "Healthcheck", "OnBuild", "Shell"]
TOP_FIELDS = ["os", "architecture", "author"]


class Err(Exception):
    pass


def parse_ref(ref):
    if ref.startswith("oci:"):
        ref = ref[4:]
    if ":" in ref:
        d, tag = ref.split(":", 1)
    else:
        d, tag = ref, None
    return d, tag


def blob_path(layout, digest):
    alg, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", alg, hexd)


def load_json_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as f:
        return json.load(f)


def find_manifest(layout, tag):
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    mans = idx.get("manifests", [])
    if tag is not None:
        cand = [m for m in mans
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
        if not cand and ":" not in tag:
            cand = [m for m in mans
                    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag + ":latest"]
        if not cand:
            names = [m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in mans]
            raise Err("%s: no image tagged %r (tags: %s)" % (layout, tag, names))
        desc = cand[-1]
    else:
        if len(mans) != 1:
            raise Err("%s: %d images, give a tag" % (layout, len(mans)))
        desc = mans[0]
    man = load_json_blob(layout, desc["digest"])
    if "manifests" in man:  # an index: take the first manifest
        man = load_json_blob(layout, man["manifests"][0]["digest"])
    return man


def open_layer(layout, layer):
    p = blob_path(layout, layer["digest"])
    mt = layer.get("mediaType", "")
    if "zstd" in mt:
        data = subprocess.run(["zstd", "-dc", p], check=True, stdout=subprocess.PIPE).stdout
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    return tarfile.open(p, "r:*")


class Node:
    __slots__ = ("typ", "mode", "uid", "gid", "size", "sha", "link", "dev",
                 "xattrs", "inode")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


def norm(name):
    name = "/" + name.lstrip("./").strip("/") if name not in (".", "./", "/", "") else "/"
    # collapse ./ and //
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def parent(p):
    return p.rsplit("/", 1)[0] or "/"


def pre_join(d, name):
    return (d.rstrip("/") + "/" + name) if d != "/" else "/" + name


def remove_tree(tree, p):
    tree.pop(p, None)
    pre = p.rstrip("/") + "/"
    for k in [k for k in tree if k.startswith(pre)]:
        del tree[k]


def read_layer(layout, layer, cache):
    """The entries of a layer: (name, kind, fields...) tuples, cached by digest."""
    cp = None
    if cache:
        cp = os.path.join(cache, layer["digest"].replace(":", "_") + ".pickle")
        try:
            with open(cp, "rb") as f:
                return pickle.load(f)
        except (OSError, EOFError, pickle.PickleError):
            pass
    ents = []
    with open_layer(layout, layer) as t:
        for m in t:
            xattrs = {k[len("SCHILY.xattr."):]: v for k, v in m.pax_headers.items()
                      if k.startswith("SCHILY.xattr.")}
            e = {"name": norm(m.name), "mode": m.mode & 0o7777, "uid": m.uid, "gid": m.gid,
                 "xattrs": xattrs, "size": 0, "sha": None, "link": None, "dev": None}
            if m.isdir():
                e["typ"] = "d"
            elif m.issym():
                e["typ"] = "l"
                e["link"] = m.linkname
            elif m.islnk():
                e["typ"] = "h"
                e["link"] = m.linkname
            elif m.ischr() or m.isblk():
                e["typ"] = "c" if m.ischr() else "b"
                e["dev"] = (m.devmajor, m.devminor)
            elif m.isfifo():
                e["typ"] = "p"
            elif m.isfile():
                e["typ"] = "f"
                e["size"] = m.size
                h = hashlib.sha256()
                f = t.extractfile(m)
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
                e["sha"] = h.hexdigest()[:16]
            else:
                e["typ"] = "?%s" % m.type
            ents.append(e)
    if cp:
        try:
            tmp = cp + ".%d" % os.getpid()
            with open(tmp, "wb") as f:
                pickle.dump(ents, f)
            os.rename(tmp, cp)
        except OSError:
            pass
    return ents


def build_tree(layout, tag, cache=None):
    man = find_manifest(layout, tag)
    config = load_json_blob(layout, man["config"]["digest"])
    tree = {"/": Node(typ="d", mode=0o755, uid=0, gid=0, size=0, xattrs={}, inode=None)}
    inode_seq = [0]
    for layer in man["layers"]:
        members = read_layer(layout, layer, cache)
        # whiteouts apply to the lower layers: do them first
        for m in members:
            p = m["name"]
            base = p.rsplit("/", 1)[1]
            if base == ".wh..wh..opq":
                pre = parent(p).rstrip("/") + "/"
                for k in [k for k in tree if k.startswith(pre)]:
                    del tree[k]
            elif base.startswith(".wh."):
                remove_tree(tree, pre_join(parent(p), base[4:]))
        for m in members:
            p = m["name"]
            base = p.rsplit("/", 1)[1] if p != "/" else ""
            if base.startswith(".wh."):
                continue
            old = tree.get(p)
            if m["typ"] == "h":
                tgt = tree.get(norm(m["link"]))
                if tgt is None:
                    raise Err("%s: hardlink %s -> %s: no such file" % (layout, p, m["link"]))
                if tgt.inode is None:
                    inode_seq[0] += 1
                    tgt.inode = inode_seq[0]
                if old is not None and old.typ == "d":
                    remove_tree(tree, p)
                tree[p] = tgt  # the same object: the same inode
                continue
            n = Node(typ=m["typ"], mode=m["mode"], uid=m["uid"], gid=m["gid"], size=m["size"],
                     sha=m["sha"], link=m["link"], dev=m["dev"], xattrs=m["xattrs"], inode=None)
            if old is not None and old.typ == "d" and n.typ != "d":
                remove_tree(tree, p)
            tree[p] = n
    # hardlink groups
    groups = {}
    for p, n in tree.items():
        if n.inode is not None:
            groups.setdefault(id(n), []).append(p)
    links = {}
    for g in groups.values():
        if len(g) > 1:
            for p in g:
                links[p] = tuple(sorted(x for x in g if x != p))
    return tree, links, config


def describe(n, links, p, ign_owner=False, ign_mode=False):
    d = {"type": n.typ}
    if not ign_mode:
        d["mode"] = "%04o" % n.mode
    if not ign_owner:
        d["owner"] = "%d:%d" % (n.uid, n.gid)
    if n.typ == "f":
        d["size"] = n.size
        d["sha256"] = n.sha
    if n.typ == "l":
        d["target"] = n.link
    if n.dev is not None:
        d["dev"] = "%d,%d" % n.dev
    if n.xattrs:
        d["xattrs"] = {k: v for k, v in sorted(n.xattrs.items())}
    if p in links:
        d["hardlinks"] = list(links[p])
    return d


def fmt(d):
    return " ".join("%s=%s" % (k, v if not isinstance(v, (list, dict)) else json.dumps(v))
                    for k, v in d.items())


def matches(p, pats, below=True):
    """p matches one of pats; with below, a path under a match matches too."""
    q = p
    while True:
        for pat in pats:
            if fnmatch.fnmatchcase(q, pat):
                return True
        if q == "/" or not below:
            return False
        q = parent(q)


def empty(v):
    return v is None or v == [] or v == {} or v == ""


def compare_config(ca, cb, ignore_fields):
    out = []
    a = ca.get("config") or {}
    b = cb.get("config") or {}
    whole = {f for f in ignore_fields if "." not in f}
    keyed = {}
    for f in ignore_fields:
        if "." in f:
            k, sub = f.split(".", 1)
            keyed.setdefault(k, set()).add(sub)

    def sub_ignore(field, va, vb):
        ks = keyed.get(field)
        if not ks:
            return va, vb
        if field == "Env":
            def flt(v):
                return [e for e in (v or []) if e.split("=", 1)[0] not in ks]
            return flt(va), flt(vb)
        if isinstance(va, dict) or isinstance(vb, dict):
            return ({k: v for k, v in (va or {}).items() if k not in ks},
                    {k: v for k, v in (vb or {}).items() if k not in ks})
        return va, vb

    for f in DOCKER_FIELDS:
        if f in whole:
            continue
        va, vb = sub_ignore(f, a.get(f), b.get(f))
        if empty(va) and empty(vb):
            continue
        if f == "Env" and va and vb and sorted(va) == sorted(vb) and len(set(k.split("=", 1)[0] for k in va)) == len(va):
            continue  # the environment is a map: the order of distinct names does not matter
        if va != vb:
            if isinstance(va, dict) and isinstance(vb, dict):
                for k in sorted(set(va) | set(vb)):
                    if va.get(k, "<absent>") != vb.get(k, "<absent>"):
                        out.append("config %s[%s]: A=%s B=%s" % (f, k, json.dumps(va.get(k, "<absent>")),
                                                                json.dumps(vb.get(k, "<absent>"))))
            else:
                out.append("config %s:\n    A=%s\n    B=%s" % (f, json.dumps(va), json.dumps(vb)))
    for f in TOP_FIELDS:
        if f in whole:
            continue
        va, vb = ca.get(f), cb.get(f)
        if empty(va) and empty(vb):
            continue
        if va != vb:
            out.append("config %s: A=%s B=%s" % (f, json.dumps(va), json.dumps(vb)))
    return out


def main(argv):
    ign_paths, ign_extra, ign_fields, ign_owner, ign_mode = [], [], [], [], []
    want_fields = []
    cache = os.environ.get("COMPARE_IMAGES_CACHE")
    quiet = False
    listing = False
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        opts = {"--ignore-path": ign_paths, "--ignore-extra": ign_extra,
                "--ignore-field": ign_fields, "--ignore-owner": ign_owner,
                "--ignore-mode": ign_mode, "--want-field": want_fields}
        if a in opts:
            if i + 1 >= len(argv):
                print("compare-images: %s needs a value" % a, file=sys.stderr)
                return 2
            opts[a].append(argv[i + 1])
            i += 2
            continue
        if "=" in a and a.split("=", 1)[0] in opts:
            k, v = a.split("=", 1)
            opts[k].append(v)
        elif a == "-q":
            quiet = True
        elif a == "--list":
            listing = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        elif a.startswith("-") and a != "-":
            print("compare-images: unknown option %s" % a, file=sys.stderr)
            return 2
        else:
            pos.append(a)
        i += 1
    if len(pos) != (1 if listing else 2):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        ta, la, ca = build_tree(*parse_ref(pos[0]), cache=cache)
        if listing:
            for p in sorted(ta):
                print(p, fmt(describe(ta[p], la, p)))
            print(json.dumps({"config": ca.get("config")}, indent=1, sort_keys=True))
            return 0
        tb, lb, cb = build_tree(*parse_ref(pos[1]), cache=cache)
    except (Err, OSError, ValueError, KeyError, tarfile.TarError, subprocess.CalledProcessError) as e:
        print("compare-images: %s" % e, file=sys.stderr)
        return 2

    diffs = []
    for p in sorted(set(ta) | set(tb)):
        if matches(p, ign_paths):
            continue
        na, nb = ta.get(p), tb.get(p)
        if na is None or nb is None:
            only = na or nb
            if p in ign_extra and ((only.typ == "f" and only.size == 0) or
                                   (only.typ == "d" and not any(k.startswith(p + "/") for k in (ta if na else tb)))):
                continue
            side = "A" if na else "B"
            diffs.append("only in %s: %s %s" % (side, p, fmt(describe(only, la if na else lb, p))))
            continue
        io_, im = matches(p, ign_owner, False), matches(p, ign_mode, False)
        da, db = describe(na, la, p, io_, im), describe(nb, lb, p, io_, im)
        if da != db:
            keys = [k for k in list(da) + [k for k in db if k not in da] if da.get(k) != db.get(k)]
            diffs.append("differs: %s: %s" % (p, "; ".join(
                "%s A=%s B=%s" % (k, json.dumps(da.get(k, "<absent>")), json.dumps(db.get(k, "<absent>")))
                for k in keys)))
    diffs += compare_config(ca, cb, ign_fields)
    cfa = ca.get("config") or {}
    for w in want_fields:
        k, v = w.split("=", 1)
        if "." in k:
            f, sub = k.split(".", 1)
            got = (cfa.get(f) or {}).get(sub, "<absent>")
        else:
            got = cfa.get(k, ca.get(k, "<absent>"))
        try:
            want = json.loads(v)
        except ValueError:
            want = v
        if got != want:
            diffs.append("config %s of A: got %s, want %s" % (k, json.dumps(got), json.dumps(want)))
    if diffs:
        if not quiet:
            print("A: %s\nB: %s" % (pos[0], pos[1]))
            for d in diffs:
                print(d)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
