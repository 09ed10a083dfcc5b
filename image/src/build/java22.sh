#!/usr/bin/env bash
# Compiles src/main/java22 (classes that use Java 22 APIs, e.g. FFM) into the multi-release
# part of the classes directory, META-INF/versions/22, with the newest JDK >= 22 on the machine
# (KILN_RELEASE_JDK, else /usr/lib/jvm/*, else JAVA_HOME). The jar stays Java 17: a JDK 17 reads
# the base classes, the release's runtime (Java 25) the versioned ones. Without such a JDK the
# versioned classes are left out (kiln works the same, only slower where they help) and a note
# says so; under CI=true that is an error, so CI always builds and tests them.
# Run by Maven (image/pom.xml, process-classes): java22.sh CLASSES SOURCES CLASSPATH
set -euo pipefail
classes="$1"
sources="$2"
cp="$3"
out="$classes/META-INF/versions/22"

feature_of() {
  sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null
}
jdk=""
best=0
for c in ${KILN_RELEASE_JDK:-} /usr/lib/jvm/* ${JAVA_HOME:-}; do
  [[ -x "$c/bin/javac" ]] || continue
  f="$(feature_of "$c")"
  if [[ -n "$f" ]] && (( f >= 22 && f > best )); then
    jdk="$c"
    best="$f"
  fi
done
if [[ -z "$jdk" ]]; then
  msg="no JDK 22 or newer found (set KILN_RELEASE_JDK): the jar is built without $sources (hole-skipping reads of sparse files, xattrs read without getfattr)"
  if [[ "${CI:-}" == true ]]; then
    echo "error: $msg" >&2
    exit 1
  fi
  echo "note: $msg" >&2
  exit 0
fi
mapfile -t files < <(cd "$sources" && find . -name '*.java' | LC_ALL=C sort)
stale=0
for f in "${files[@]}"; do
  class="$out/${f%.java}.class"
  [[ -f "$class" && "$class" -nt "$sources/$f" ]] || stale=1
done
(( stale )) || exit 0
rm -rf "$out"
mkdir -p "$out"
(cd "$sources" && "$jdk/bin/javac" --release 22 -nowarn -Xlint:-options -encoding UTF-8 -implicit:none \
  -cp "$classes:$cp" -d "$out" "${files[@]}")
