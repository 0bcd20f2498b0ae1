#!/usr/bin/env python3
"""Writes small OCI images for tests: an OCI image layout (directory or
tarball, what `skopeo copy ... oci-archive:` writes) or a `docker save`
tarball (manifest.json + repositories + <hex>.json + <id>/layer.tar).

    make_image.py SPEC.json OUT

SPEC (JSON):
  format     "oci" (tarball) | "oci-dir" | "docker"            default "oci"
  compress   "none" | "gzip" | "zstd" (OCI layers only)         default "gzip"
  busybox    true: a first layer with /bin/busybox (busybox-static), its
             applet links, /etc/passwd and /etc/group (root, app 1000:1000)
  layers     [[ENTRY...]...], each ENTRY:
               {"path": "a/b", "type": "file"|"dir"|"symlink"|"hardlink"|
                "char"|"fifo", "data": "text", "size": N (zeros),
                "target": "...", "mode": 0o644, "uid": 0, "gid": 0}
  config     {"Env": [...], "WorkingDir": "...", "User": "..."}
  truncate_layer   index: the layer blob is cut in half (digests match the
                   cut bytes, so only the tar reader can notice)
  corrupt    "layer" | "config" | "manifest": flip a byte after the digests
             were computed (the import must refuse it)
Prints the config digest ("sha256:<hex>") on stdout.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

APPLETS = ["sh", "ls", "cat", "echo", "id", "pwd", "env", "dd", "df", "rm", "mkdir", "touch", "sync",
           "head", "wc", "stat", "true", "false", "sleep", "test", "grep"]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def layer_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            ti = tarfile.TarInfo(e["path"])
            ti.mode = e.get("mode", 0o755 if e.get("type") == "dir" else 0o644)
            ti.uid = e.get("uid", 0)
            ti.gid = e.get("gid", 0)
            ti.mtime = 1700000000
            t = e.get("type", "file")
            data = None
            if t == "file":
                if "src" in e:
                    with open(e["src"], "rb") as f:
                        data = f.read()
                elif "size" in e:
                    data = b"\0" * e["size"]
                else:
                    data = e.get("data", "").encode()
                ti.size = len(data)
            elif t == "dir":
                ti.type = tarfile.DIRTYPE
            elif t == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["target"]
            elif t == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e["target"]
            elif t == "char":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = 1, 3
            elif t == "fifo":
                ti.type = tarfile.FIFOTYPE
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def busybox_layer():
    bb = shutil.which("busybox") or "/bin/busybox"
    entries = [{"path": d, "type": "dir"} for d in ["bin", "etc", "home", "home/app", "tmp", "root"]]
    entries[3]["uid"] = entries[3]["gid"] = 1000
    entries.append({"path": "bin/busybox", "src": bb, "mode": 0o755})
    for a in APPLETS:
        entries.append({"path": "bin/" + a, "type": "symlink", "target": "busybox"})
    entries.append({"path": "etc/passwd", "data": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"})
    entries.append({"path": "etc/group", "data": "root:x:0:\napp:x:1000:\nstaff:x:50:\n"})
    return entries


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        out = subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout
        return out, "application/vnd.oci.image.layer.v1.tar+zstd"
    return data, "application/vnd.oci.image.layer.v1.tar"


def flip(data):
    b = bytearray(data)
    b[len(b) // 2] ^= 0x01
    return bytes(b)


def build(spec, out):
    layers = [layer_tar(busybox_layer())] if spec.get("busybox") else []
    layers += [layer_tar(entries) for entries in spec.get("layers", [])]
    if "truncate_layer" in spec:
        i = spec["truncate_layer"]
        layers[i] = layers[i][: len(layers[i]) // 2]
    diff_ids = ["sha256:" + sha(l) for l in layers]
    config = {"architecture": "amd64", "os": "linux", "config": spec.get("config", {}),
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_bytes = json.dumps(config).encode()
    corrupt = spec.get("corrupt")
    fmt = spec.get("format", "oci")
    files = {}  # archive path -> bytes
    if fmt == "docker":
        layer_paths = []
        for i, l in enumerate(layers):
            lid = sha(l)
            files[lid + "/layer.tar"] = flip(l) if corrupt == "layer" and i == len(layers) - 1 else l
            files[lid + "/VERSION"] = b"1.0"
            layer_paths.append(lid + "/layer.tar")
        name = sha(config_bytes) + ".json"
        files[name] = flip(config_bytes) if corrupt == "config" else config_bytes
        files["manifest.json"] = json.dumps([{"Config": name, "RepoTags": ["test:latest"], "Layers": layer_paths}]).encode()
        files["repositories"] = json.dumps({"test": {"latest": sha(layers[-1]) if layers else ""}}).encode()
    else:
        blobs = {}
        descs = []
        for i, l in enumerate(layers):
            data, mt = compress(l, spec.get("compress", "gzip"))
            descs.append({"mediaType": mt, "digest": "sha256:" + sha(data), "size": len(data)})
            blobs[sha(data)] = flip(data) if corrupt == "layer" and i == len(layers) - 1 else data
        blobs[sha(config_bytes)] = flip(config_bytes) if corrupt == "config" else config_bytes
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": "sha256:" + sha(config_bytes), "size": len(config_bytes)},
                    "layers": descs}
        mbytes = json.dumps(manifest).encode()
        blobs[sha(mbytes)] = flip(mbytes) if corrupt == "manifest" else mbytes
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": manifest["mediaType"], "digest": "sha256:" + sha(mbytes),
                                "size": len(mbytes), "platform": {"os": "linux", "architecture": "amd64"}}]}
        files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
        files["index.json"] = json.dumps(index).encode()
        for h, b in blobs.items():
            files["blobs/sha256/" + h] = b
    if fmt == "oci-dir":
        for p, b in files.items():
            os.makedirs(os.path.dirname(os.path.join(out, p)) or out, exist_ok=True)
            with open(os.path.join(out, p), "wb") as f:
                f.write(b)
    else:
        with tarfile.open(out, "w") as tar:
            for p, b in files.items():
                ti = tarfile.TarInfo(p)
                ti.size = len(b)
                ti.mode = 0o644
                tar.addfile(ti, io.BytesIO(b))
    return "sha256:" + sha(config_bytes)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    print(build(spec, sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
