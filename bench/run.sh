#!/usr/bin/env bash
# Benchmark: kiln build (tarball -> ext4, one streaming pass) against the mkfs route the old
# workflow used (extract the tarball, then mkfs.ext4 -d). Prints seconds and throughput for each,
# and checks every image with e2fsck -fn. Usage: bench/run.sh [files] [big-files]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
files="${1:-20000}"
big="${2:-40}"
work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "building kiln..." >&2
(cd "$here" && mvn -B -q -DskipTests package >/dev/null)
jar="$here/cli/target/kiln.jar"

echo "generating a tree of $files small files and $big 8 MiB files..." >&2
python3 - "$work/src" "$files" "$big" <<'PY'
import os, random, sys
root, n, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(42)
for i in range(n):
    d = os.path.join(root, "usr", "lib", "pkg%03d" % (i % 300))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "file-%06d.so" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(100, 16384)))
for i in range(big):
    d = os.path.join(root, "opt", "big")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "blob-%03d" % i), "wb") as f:
        f.write(rnd.randbytes(8 << 20))
for i in range(2000):
    os.symlink("../lib/pkg%03d/file-%06d.so" % (i % 300, i), os.path.join(root, "usr", "lib", "link-%05d" % i))
PY
tar -C "$work/src" -cf "$work/rootfs.tar" .
bytes=$(stat -c %s "$work/rootfs.tar")
size=$(( (bytes * 3 / 2) / 1048576 + 256 ))M
echo "tarball: $((bytes / 1048576)) MiB, image size $size" >&2
sync

now() { date +%s.%N; }
report() { # name seconds
  python3 -c "import sys; s=float(sys.argv[2]); print(f'{sys.argv[1]:<42} {s:7.2f} s  {int(sys.argv[3])/s/1048576:8.1f} MiB/s')" "$1" "$2" "$bytes"
}

t0=$(now); java -jar "$jar" build --image "tar:$work/rootfs.tar" -o "$work/kiln.ext4" --size "$size" -q --no-checksum-file; t1=$(now)
report "kiln build tar: -> ext4" "$(echo "$t1 - $t0" | bc)"
t0=$(now); java -jar "$jar" build --image "tar:$work/rootfs.tar" -o "$work/kiln.ext4" --size "$size" -q; t1=$(now)
report "kiln build tar: -> ext4 + .sha256" "$(echo "$t1 - $t0" | bc)"
t0=$(now); java -jar "$jar" build --image "dir:$work/src" -o "$work/kiln-dir.ext4" --size "$size" -q --no-checksum-file; t1=$(now)
report "kiln build dir: -> ext4" "$(echo "$t1 - $t0" | bc)"

if command -v mkfs.ext4 >/dev/null; then
  t0=$(now)
  mkdir "$work/x" && tar -C "$work/x" -xf "$work/rootfs.tar"
  truncate -s "$size" "$work/mkfs.ext4"
  mkfs.ext4 -q -F -b 4096 -i 16384 -d "$work/x" "$work/mkfs.ext4"
  t1=$(now)
  report "tar -x + mkfs.ext4 -d (reference)" "$(echo "$t1 - $t0" | bc)"
fi
if command -v e2fsck >/dev/null; then
  e2fsck -fn "$work/kiln.ext4" >/dev/null && e2fsck -fn "$work/kiln-dir.ext4" >/dev/null && echo "e2fsck -fn: clean" >&2
fi
t0=$(now); java -jar "$jar" verify -q "$work/kiln.ext4"; t1=$(now)
report "kiln verify" "$(echo "$t1 - $t0" | bc)"
