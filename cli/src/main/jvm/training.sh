# Sourced (bash) by ./kiln and dist/release.sh: the inputs of the training run whose loaded
# classes become ./kiln's class-data-sharing archive and the release's ahead-of-time cache.
#
# kiln_training DIR SIZE: makes, in DIR,
#   t/        a small tree: files, a symlink, a hard link, a directory of more than one block
#             (its hash index: DxHash and the rest), a file over 1 MiB
#   t.tar.gz  the same as a tarball: the first build's base
#   oci/      the same as an OCI image layout of one gzip layer (tag "t"), built with tar, gzip
#             and sha256sum only: the registry path's documents (Jackson) and layer reading
#   p.tar     the same and 17 MiB of zeros as an uncompressed tarball
#   then      the further builds the training process runs after the first
#             (-Dkiln.training.then): from dir: and from p.tar
#   oci.args  the oci: build's arguments, in the same form: ./kiln runs it in a second training
#             process, the release appends it to "then" (its single cache)
# An archive or a cache holds what one process loaded, and a build has one base; without these
# a dir: build parsed and verified ~140 classes at run time, an oci: or registry build ~800
# (Jackson's). A step that fails leaves its build out; the training still runs.
kiln_training() {
  local dir="$1" size="$2" arch d
  mkdir -p "$dir/t/etc" "$dir/t/bin" "$dir/t/share/many" || return 1
  echo kiln > "$dir/t/etc/hostname"
  ln -s hostname "$dir/t/etc/name"
  ln "$dir/t/etc/hostname" "$dir/t/etc/hostname.1"
  for ((d = 1; d <= 200; d++)); do : > "$dir/t/share/many/training-file-$d"; done
  # Over the 1 MiB a dir: walk reads ahead: the kernel copies it into the image (not zeros,
  # which would become a hole; one letter, which gzip makes small).
  head -c 1100000 /dev/zero | tr '\0' k > "$dir/t/bin/large" || return 1
  tar -C "$dir" -czf "$dir/t.tar.gz" t || return 1
  printf 'build\t--image\tdir:%s\t-o\t%s\t--size\t%s\t-q\n' "$dir/t" "$dir/d.ext4" "$size" > "$dir/then"
  # An uncompressed tarball (docker export's) of 16 MiB or more is read through a read-ahead
  # stream (its class and lambdas were made at run time without this): the tree and 17 MiB of
  # zeros, which the image holds as a hole.
  mkdir -p "$dir/pz" && truncate -s 17M "$dir/pz/zeros" && tar -C "$dir" -cf "$dir/p.tar" t pz \
    && printf 'build\t--image\ttar:%s\t-o\t%s\t--size\t%s\t-q\n' "$dir/p.tar" "$dir/p.ext4" "$size" >> "$dir/then"
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) arch="$(uname -m)" ;;
  esac
  if kiln_training_oci "$dir/t" "$dir/oci" "$arch" 2>/dev/null; then
    printf 'build\t--image\toci:%s:t\t-o\t%s\t--size\t%s\t-q\n' "$dir/oci" "$dir/o.ext4" "$size" > "$dir/oci.args"
  fi
}

# kiln_training_oci TREE LAYOUT ARCH: an OCI image layout of TREE (one gzip layer, tag "t").
kiln_training_oci() {
  local tree="$1" o="$2" arch="$3" diff layer ls config cs manifest ms
  mkdir -p "$o/blobs/sha256" || return 1
  tar -C "$tree" -cf "$o/layer.tar" . || return 1
  diff="$(sha256sum < "$o/layer.tar")" && diff="${diff%% *}" || return 1
  gzip -n < "$o/layer.tar" > "$o/layer" && rm -f "$o/layer.tar" || return 1
  read -r layer ls < <(kiln_training_blob "$o" layer) && [[ -n "$ls" ]] || return 1
  printf '{"architecture":"%s","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"config":{}}' \
    "$arch" "$diff" > "$o/config"
  read -r config cs < <(kiln_training_blob "$o" config) && [[ -n "$cs" ]] || return 1
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$config" "$cs" "$layer" "$ls" > "$o/manifest"
  read -r manifest ms < <(kiln_training_blob "$o" manifest) && [[ -n "$ms" ]] || return 1
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"t"}}]}' \
    "$manifest" "$ms" > "$o/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$o/oci-layout"
}

# kiln_training_blob LAYOUT FILE: moves LAYOUT/FILE to its content address; prints the digest
# and the size.
kiln_training_blob() {
  local d
  d="$(sha256sum < "$1/$2")" && d="${d%% *}" && mv -f "$1/$2" "$1/blobs/sha256/$d" \
    && echo "$d $(stat -c %s "$1/blobs/sha256/$d")"
}
