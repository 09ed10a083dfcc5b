#!/usr/bin/env bash
# Builds kiln's self-contained release from the kiln jar (run by `mvn package` in this module):
#
#   target/kiln-VERSION-linux-ARCH.tar.gz   bin/kiln, lib/kiln.jar, lib/kiln.aot (or kiln.jsa), runtime/,
#                                           share/man/man1, share/completions, share/doc
#   target/kiln_DEBVERSION_DEBARCH.deb      the same under /usr/lib/kiln, /usr/bin/kiln, man pages, completions
#
# The runtime is jlinked from the newest JDK on the machine (KILN_RELEASE_JDK, else Temurin 25 when
# present, else the JDK running Maven) with only the modules kiln uses; the jar itself stays Java 17.
# On JDK 25+ an ahead-of-time cache (JEP 483/514) is trained by a representative build; before
# that, a CDS archive. Both are made for, and only used with, the bundled runtime.
set -euo pipefail
version="$1"
jar="$2"
out="$3"
[[ -f "$jar" ]] || { echo "release: $jar is missing; build the cli module first" >&2; exit 1; }

here="$(cd "$(dirname "$0")" && pwd)"
arch="$(uname -m)"
debarch="$(dpkg --print-architecture 2>/dev/null || { [[ $arch == x86_64 ]] && echo amd64 || echo "$arch"; })"
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 1767225600)}"

jdk="${KILN_RELEASE_JDK:-}"
if [[ -z "$jdk" ]]; then
  for c in /usr/lib/jvm/temurin-25-jdk-*; do
    [[ -x "$c/bin/jlink" ]] && jdk="$c"
  done
fi
if [[ -z "$jdk" ]]; then
  jdk="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}"
fi
feature="$("$jdk/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"

name="kiln-$version-linux-$arch"
rel="$out/release"
stage="$rel/$name"
rm -rf "$rel"
mkdir -p "$stage/bin" "$stage/lib" "$stage/share/man/man1" "$stage/share/completions" "$stage/share/doc/kiln"

# Only the modules kiln needs (jdeps on the jar lists java.desktop and java.sql too: they serve
# commons-compress's pack200 and Jackson's java.sql types, which kiln never uses). TLS's elliptic
# curves live in jdk.crypto.ec before JDK 22.
modules="java.base,java.net.http,jdk.unsupported"
# (The list is read whole first: `java | grep -q` under pipefail is false when grep stops early.)
if grep -q '^jdk.crypto.ec@' <<< "$("$jdk/bin/java" --list-modules)"; then
  modules="$modules,jdk.crypto.ec"
fi
compress="--compress=zip-6"
(( feature < 21 )) && compress="--compress=2"
"$jdk/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages "$compress" \
  --output "$stage/runtime"
cp "$jar" "$stage/lib/kiln.jar"
# The AOT/CDS cache records the jar's size and time and is refused if either differs: give the
# jar the archive's time before training, so unpacking (tar, dpkg) keeps it valid.
touch -d "@$epoch" "$stage/lib/kiln.jar"

java="$stage/runtime/bin/java"
# The JIT settings of ./kiln (see there and the directives file): C2 for SHA-256 only.
cp "$here/../cli/src/main/jvm/compiler-directives.json" "$stage/lib/compiler-directives.json"
fill='-XX:-C1UpdateMethodData -XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=6000 -XX:Tier4CompileThreshold=150000 -XX:Tier4BackEdgeThreshold=400000 -XX:CompileCommand=quiet -XX:CompileCommand=CompileThresholdScaling,sun.security.provider.SHA2::*,0.1 -XX:CompileCommand=CompileThresholdScaling,sun.security.provider.DigestBase::*,0.1 -XX:CompileCommand=CompileThresholdScaling,sun.security.provider.DigestBase::engineUpdate,0.0001 -XX:CompileCommand=CompileThresholdScaling,sun.security.provider.DigestBase::implCompressMultiBlock*,0.0001 -XX:CompileCommand=CompileThresholdScaling,java.util.Arrays::fill,0.002'
jit='-XX:+UnlockDiagnosticVMOptions -XX:-DisplayVMOutput -XX:CompilerDirectivesFile="$home/lib/compiler-directives.json" '"$fill"
# The heap settings of ./kiln (see there): a small young generation, a heap that grows as needed.
heap="-Xmn4m -Xms8m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20 -XX:MinHeapDeltaBytes=4m"
opts=(-XX:+UseSerialGC $heap -XX:+UnlockDiagnosticVMOptions -XX:-DisplayVMOutput
  -XX:CompilerDirectivesFile="$stage/lib/compiler-directives.json" $fill)

# Man pages and completion scripts, from the command model of this very jar.
"$java" -jar "$stage/lib/kiln.jar" man --to "$stage/share/man/man1"
"$java" -jar "$stage/lib/kiln.jar" completion bash > "$stage/share/completions/kiln.bash"
"$java" -jar "$stage/lib/kiln.jar" completion zsh > "$stage/share/completions/_kiln"
"$java" -jar "$stage/lib/kiln.jar" completion fish > "$stage/share/completions/kiln.fish"
cp "$here/../README.md" "$stage/share/doc/kiln/README.md"
cp "$here/../docs/ARCHITECTURE.md" "$stage/share/doc/kiln/ARCHITECTURE.md"

# Training: what small real builds load (a tar source with files, a symlink, a hard link and
# a directory of more than one block; an added tree; the Nex profile; verify; the same tree from
# dir: and from an OCI layout), so start-up of the commands users run is served from the cache.
train="$(mktemp -d "${TMPDIR:-/tmp}/kiln-train.XXXXXX")"
trap 'rm -rf "$train"' EXIT
# The inputs, shared with ./kiln (cli/src/main/jvm/training.sh): a tree, its tarball and OCI
# layout; the build from tar: below, then in the same process from dir: and oci: (one cache).
source "$here/../cli/src/main/jvm/training.sh"
kiln_training "$train" 16M
[[ -f "$train/oci.args" ]] && cat "$train/oci.args" >> "$train/then"
printf '#!/bin/sh\nexec sleep 1\n' > "$train/agent"
training=(-Dkiln.training.then="$train/then" -jar "$stage/lib/kiln.jar" build --image "tar:$train/t.tar.gz"
  --add "$train/t:/srv" --agent "$train/agent" --agent-init pid1 --no-boot-check --verify -o "$train/t.ext4" --size 16M -q)
launch_cache=""
if (( feature >= 25 )); then
  # -AOTRecordTraining: no method profiles in the cache (JEP 515). They exist to let C2 compile
  # early, and C2 compiles only SHA-256 here: with them the JIT compiled a third more methods at
  # start (small corpus: 0.64 -> 0.58 CPU-s without them).
  (cd "$train" && "$java" "${opts[@]}" -XX:-AOTRecordTraining -XX:AOTCacheOutput="$stage/lib/kiln.aot" -Xlog:aot=off -Xlog:cds=off \
    "${training[@]}" >"$train/log" 2>&1) || { cat "$train/log" >&2; exit 1; }
  launch_cache='-XX:AOTCache="$home/lib/kiln.aot" -Xlog:aot=off -Xlog:cds=off'
else
  (cd "$train" && "$java" "${opts[@]}" -XX:ArchiveClassesAtExit="$stage/lib/kiln.jsa" -Xlog:cds=off \
    -Xlog:cds+dynamic=off "${training[@]}" >"$train/log" 2>&1) || { cat "$train/log" >&2; exit 1; }
  launch_cache='-Xshare:auto -XX:SharedArchiveFile="$home/lib/kiln.jsa" -Xlog:cds=off -Xlog:cds+dynamic=off'
fi

cat > "$stage/bin/kiln" <<EOF
#!/bin/sh
# kiln $version: runs on the runtime bundled beside it; needs no JDK or Maven on the machine.
# KILN_JAVA_OPTS adds JVM options (e.g. -Xmx2g).
# One readlink process (the .deb's /usr/bin/kiln is a link); the directory part by the shell.
self=\$(readlink -f "\$0")
home=\${self%/*/*}
# Transparent huge pages for the heap where the kernel gives them on request (see ./kiln).
thp=
[ -r /sys/kernel/mm/transparent_hugepage/enabled ] && read -r thp < /sys/kernel/mm/transparent_hugepage/enabled
case "\$thp" in *"[madvise]"*) thp=-XX:+UseTransparentHugePages ;; *) thp= ;; esac
set -f # KILN_JAVA_OPTS is split into words, never globbed
exec "\$home/runtime/bin/java" -XX:+UseSerialGC $heap \$thp $jit $launch_cache \\
  \${KILN_JAVA_OPTS:-} -jar "\$home/lib/kiln.jar" "\$@"
EOF
chmod 755 "$stage/bin/kiln"

# Reproducible archives: sorted names, one time, numeric root ownership.
tarball="$out/$name.tar.gz"
tar -C "$rel" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -cf - "$name" | gzip -n -9 > "$tarball"

# The Debian package: the same tree under /usr/lib/kiln.
debversion="${version/-SNAPSHOT/~snapshot}"
deb="$rel/deb"
mkdir -p "$deb/DEBIAN" "$deb/usr/lib/kiln" "$deb/usr/bin" "$deb/usr/share/man/man1" "$deb/usr/share/doc/kiln" \
  "$deb/usr/share/bash-completion/completions" "$deb/usr/share/zsh/vendor-completions" \
  "$deb/usr/share/fish/vendor_completions.d"
cp -a "$stage/bin" "$stage/lib" "$stage/runtime" "$deb/usr/lib/kiln/"
ln -s ../lib/kiln/bin/kiln "$deb/usr/bin/kiln"
for m in "$stage"/share/man/man1/*.1; do
  gzip -n -9 -c "$m" > "$deb/usr/share/man/man1/$(basename "$m").gz"
done
cp "$stage/share/completions/kiln.bash" "$deb/usr/share/bash-completion/completions/kiln"
cp "$stage/share/completions/_kiln" "$deb/usr/share/zsh/vendor-completions/_kiln"
cp "$stage/share/completions/kiln.fish" "$deb/usr/share/fish/vendor_completions.d/kiln.fish"
cp "$stage/share/doc/kiln/"* "$deb/usr/share/doc/kiln/"
installed="$(du -sk "$deb/usr" | cut -f1)"
cat > "$deb/DEBIAN/control" <<EOF
Package: kiln
Version: $debversion
Architecture: $debarch
Maintainer: kiln developers <kiln@example.invalid>
Installed-Size: $installed
Depends: libc6
Section: admin
Priority: optional
Description: builds bootable ext4 root file systems for microVMs
 kiln builds ext4 root file system images for Firecracker microVMs from registry
 images, OCI layouts, tarballs or directories in one streaming pass: no root, no
 Docker daemon, no loop mount, no mkfs.ext4. It also reads, verifies, boots,
 publishes and fetches such images. A Java runtime is bundled.
EOF
find "$deb" -exec touch -h -d "@$epoch" {} +
dpkg-deb --root-owner-group -Zgzip --build "$deb" "$out/kiln_${debversion}_${debarch}.deb" >/dev/null

echo "release: $tarball ($(du -h "$tarball" | cut -f1)), $out/kiln_${debversion}_${debarch}.deb (runtime from $jdk)"
