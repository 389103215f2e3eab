#!/usr/bin/env python3
"""explain-digest-diff.py LAYOUT_A TAG_A LAYOUT_B TAG_B: say why two images
that should be byte-identical are not — which document differs, and for a
layer the first tar entry (and field) that differs, diffoscope-style."""
import gzip, io, json, os, sys, tarfile

def blob(layout, digest):
    return open(os.path.join(layout, "blobs", "sha256", digest.split(":")[1]), "rb").read()

def manifest(layout, tag):
    idx = json.load(open(os.path.join(layout, "index.json")))
    d = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][-1]
    return d["digest"], json.loads(blob(layout, d["digest"]))

def json_diff(a, b, path=""):
    if type(a) != type(b):
        return ["%s: %r != %r" % (path or "/", a, b)]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append("%s/%s: only in %s" % (path, k, "A" if k in a else "B"))
            else:
                out += json_diff(a[k], b[k], path + "/" + k)
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return ["%s: %d != %d items" % (path, len(a), len(b))]
        return sum((json_diff(x, y, "%s[%d]" % (path, i)) for i, (x, y) in enumerate(zip(a, b))), [])
    return [] if a == b else ["%s: %r != %r" % (path, a, b)]

def members(data):
    try:
        raw = gzip.decompress(data)
    except OSError:
        raw = data
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        return [(m.name, m.type, m.mode, m.uid, m.gid, m.uname, m.gname, m.mtime, m.size, m.linkname,
                 dict(m.pax_headers), t.extractfile(m).read() if m.isreg() else b"") for m in t.getmembers()], raw

la, ta, lb, tb = sys.argv[1:5]
da, ma = manifest(la, ta)
db, mb = manifest(lb, tb)
if da == db:
    print("identical manifests:", da); sys.exit(0)
print("manifests differ:", da, db)
for line in json_diff(ma, mb):
    print("  manifest", line)
ca, cb = json.loads(blob(la, ma["config"]["digest"])), json.loads(blob(lb, mb["config"]["digest"]))
for line in json_diff(ca, cb):
    print("  config", line)
fields = ("name", "type", "mode", "uid", "gid", "uname", "gname", "mtime", "size", "linkname", "pax", "content")
for i, (x, y) in enumerate(zip(ma["layers"], mb["layers"])):
    if x["digest"] == y["digest"]:
        continue
    ea, ra = members(blob(la, x["digest"]))
    eb, rb = members(blob(lb, y["digest"]))
    if ra == rb:
        print("  layer %d: same tar, different compression (%s vs %s)" % (i, x["mediaType"], y["mediaType"]))
        continue
    for j, (p, q) in enumerate(zip(ea, eb)):
        if p != q:
            f = [fields[k] for k in range(len(fields)) if p[k] != q[k]]
            print("  layer %d entry %d %s: %s differ: %r vs %r" % (i, j, p[0], ",".join(f),
                  [p[fields.index(n)] for n in f if n != "content"], [q[fields.index(n)] for n in f if n != "content"]))
            break
    else:
        print("  layer %d: %d vs %d entries" % (i, len(ea), len(eb)))
sys.exit(1)
