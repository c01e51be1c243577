#!/usr/bin/env bash
# Builds the project's container images (api-server, web, operator) and the images the end-to-end
# test runs (pause, redis, haproxy, ferretdb, kube-network-policies) from their
# Dockerfiles, without a Docker daemon: buildah with chroot isolation and a storage folder of its own (docker or podman instead
# when one is usable). Binaries are compiled outside the images (cargo, npm, gcc, scripts/test-deps.sh)
# and each image gets a small staged build context holding only what its Dockerfile copies.
#
# Each image is exported to an OCI archive in --out (default .tools/images/); an image whose inputs
# (Dockerfile, staged context, base image) did not change is skipped. With CONTAINERD_ADDRESS set,
# the archives are imported into that containerd's k8s.io namespace (skipped when it has the same
# digest already).
#
# The Debian base (`debian:<suite>-slim`) is made locally with mmdebstrap (minbase) when building
# with buildah; its root filesystem tarball is cached per user by suite and date.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${BEER_MEETUP_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/beer-meetup-tools}

ALL_IMAGES=(pause api-server operator web redis haproxy ferretdb kube-network-policies)
# One Debian suite for every image (trixie); binaries built on bookworm run there too.
SUITE=${DEBIAN_SUITE:-trixie}
# A base root filesystem younger than this is reused (security updates arrive with a newer one).
BASE_MAX_AGE_DAYS=${BASE_MAX_AGE_DAYS:-7}
# The release of kube-network-policies test-deps.sh builds.
KUBE_NETWORK_POLICIES_VERSION=0.8.0

profile=release
out="$root/.tools/images"
builder=auto
build_inputs=1
selected=()

usage() {
  cat <<EOF
usage: scripts/images.sh [options] [image...]
Images: ${ALL_IMAGES[*]} (default: all)
  --profile release|debug  which cargo build of the Rust binaries goes in (default: release)
  --out DIR                where the OCI archives go (default: .tools/images)
  --builder auto|buildah|docker|podman
                           auto: docker or podman when its daemon/socket answers, else buildah
  --no-build               do not run cargo/npm/test-deps: use the binaries already built
  --list                   print image name and tag per image, and exit
Environment: CONTAINERD_ADDRESS (import into that containerd, namespace k8s.io),
  DEBIAN_SUITE (default trixie), BASE_MAX_AGE_DAYS (default 7).
EOF
}

log() { printf '[images] %s\n' "$*" >&2; }
fail() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

list_only=0
while (($#)); do
  case $1 in
    --profile) profile=${2:?}; shift 2 ;;
    --profile=*) profile=${1#*=}; shift ;;
    --out) out=${2:?}; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    --builder) builder=${2:?}; shift 2 ;;
    --builder=*) builder=${1#*=}; shift ;;
    --no-build) build_inputs=0; shift ;;
    --list) list_only=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; fail "unknown option $1" ;;
    *) selected+=("$1"); shift ;;
  esac
done
[[ $profile == release || $profile == debug ]] || fail "--profile must be release or debug"
((${#selected[@]})) || selected=("${ALL_IMAGES[@]}")
for name in "${selected[@]}"; do
  [[ " ${ALL_IMAGES[*]} " == *" $name "* ]] || fail "unknown image '$name' (images: ${ALL_IMAGES[*]})"
done

# The platform's version: the operator renders beermeetup/<x>:<version>, the chart's appVersion.
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")
[[ -n $version ]] || fail "no [workspace.package] version in Cargo.toml"
ferretdb_version=$(sed -n 's/^require github.com\/FerretDB\/FerretDB \(v[0-9.]*\).*/\1/p' \
  "$root/tests/tools/ferretdb/go.mod")
ferretdb_version=${ferretdb_version#v}
haproxy_image=$(sed -n 's/^pub const HAPROXY_IMAGE: &str = "\(haproxy:[^"]*\)";/\1/p' "$root/operator/src/images.rs")
[[ -n $haproxy_image ]] || fail "no HAPROXY_IMAGE in operator/src/images.rs"

# image_ref NAME: the full reference the image is tagged and imported as (what a kubelet asks for
# when a pod names it without a registry).
image_ref() {
  case $1 in
    pause) echo "docker.io/beermeetup-test/pause:3.10" ;;
    api-server) echo "docker.io/beermeetup/api-server:$version" ;;
    operator) echo "docker.io/beermeetup/operator:$version" ;;
    web) echo "docker.io/beermeetup/web:$version" ;;
    # The operator's default data-service tag (operator/src/images.rs).
    redis) echo "docker.io/library/redis:7.4" ;;
    # The operator's default proxy image (operator/src/images.rs), stood in for by Debian's HAProxy.
    haproxy) echo "docker.io/library/$haproxy_image" ;;
    ferretdb) echo "docker.io/beermeetup-test/ferretdb:${ferretdb_version:-test}" ;;
    kube-network-policies) echo "docker.io/beermeetup-test/kube-network-policies:$KUBE_NETWORK_POLICIES_VERSION" ;;
  esac
}

if ((list_only)); then
  for name in "${selected[@]}"; do printf '%s\t%s\n' "$name" "$(image_ref "$name")"; done
  exit 0
fi

dockerfile_of() {
  case $1 in
    api-server | operator | web) echo "$root/$1/Dockerfile" ;;
    *) echo "$root/tests/images/$1/Dockerfile" ;;
  esac
}

# timed LABEL COMMAND...: runs COMMAND and logs how long it took.
timed() {
  local label=$1 start=$SECONDS; shift
  "$@"
  log "$label: $((SECONDS - start))s"
}

# ---- builder ------------------------------------------------------------------------------------
store="$cache/containers"
if [[ $builder == auto ]]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    builder=docker
  elif command -v podman >/dev/null && podman info >/dev/null 2>&1; then
    builder=podman
  else
    builder=buildah
  fi
fi
case $builder in
  buildah)
    command -v buildah >/dev/null || fail "buildah is not installed (scripts/test-deps.sh installs it)"
    mkdir -p "$store"
    # Our own storage (never the machine's), overlay when the kernel allows it. crun refuses hybrid
    # cgroup hosts: runc is the runtime; RUN steps use chroot isolation (no daemon, no cgroups).
    driver=${BUILDAH_STORAGE_DRIVER:-overlay}
    export BUILDAH_ISOLATION=chroot BUILDAH_RUNTIME=${BUILDAH_RUNTIME:-runc}
    bah() { buildah --root "$store/storage" --runroot "$store/run" --storage-driver "$driver" "$@"; }
    # One build at a time per store.
    exec 9>"$store/lock"
    flock 9
    ;;
  docker | podman) command -v "$builder" >/dev/null || fail "$builder is not installed" ;;
  *) fail "--builder must be auto, buildah, docker or podman" ;;
esac
log "builder: $builder, Debian $SUITE, $profile binaries, archives in $out"
mkdir -p "$out"

# image_id REF: the image's id in the builder's store, empty when absent.
image_id() {
  case $builder in
    buildah) bah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true ;;
    *) "$builder" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true ;;
  esac
}

# ---- Debian base image --------------------------------------------------------------------------
base_ref="docker.io/library/debian:$SUITE-slim"

# How the base is made, like the official slim images: no documentation or translations (the dpkg
# options stay in the image, so packages the Dockerfiles install later are slim too), apt keeps no
# .deb files or package caches after an install, no services started by package scripts, no device
# nodes (the runtime provides /dev).
apt_clean='rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true'
base_options=(--variant=minbase --format=tar --skip=output/dev
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --customize-hook="printf '%s\n' 'DPkg::Post-Invoke { \"$apt_clean\"; };' 'APT::Update::Post-Invoke { \"$apt_clean\"; };' 'Dir::Cache::pkgcache \"\";' 'Dir::Cache::srcpkgcache \"\";' >\"\$1/etc/apt/apt.conf.d/docker-clean\""
  --customize-hook="printf '%s\n' 'Acquire::Languages \"none\";' >\"\$1/etc/apt/apt.conf.d/docker-no-languages\""
  --customize-hook="printf '#!/bin/sh\nexit 101\n' >\"\$1/usr/sbin/policy-rc.d\" && chmod 0755 \"\$1/usr/sbin/policy-rc.d\""
  --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname" "$1"/var/cache/apt/*.bin')
# Changing the options above makes a new root filesystem.
base_recipe=$(printf '%s\n' "${base_options[@]}" | sha256sum | cut -c1-8)

# The newest cached root filesystem of the suite and recipe, made anew when none is young enough.
base_rootfs() {
  local dir="$cache/images" tarball prefix="debian-$SUITE-minbase-$base_recipe"
  mkdir -p "$dir"
  tarball=$(find "$dir" -maxdepth 1 -name "$prefix-*.tar" -mtime "-$BASE_MAX_AGE_DAYS" | sort | tail -n 1)
  if [[ -z $tarball ]]; then
    command -v mmdebstrap >/dev/null || fail "mmdebstrap is not installed (scripts/test-deps.sh installs it)"
    tarball="$dir/$prefix-$(date -u +%Y%m%d).tar"
    log "making the Debian $SUITE root filesystem with mmdebstrap (a few minutes) ..."
    local start=$SECONDS
    if ! mmdebstrap "${base_options[@]}" "$SUITE" "$tarball.tmp" >"$dir/mmdebstrap-$SUITE.log" 2>&1; then
      tail -20 "$dir/mmdebstrap-$SUITE.log" >&2
      rm -f "$tarball.tmp"
      fail "mmdebstrap failed (log: $dir/mmdebstrap-$SUITE.log)"
    fi
    mv "$tarball.tmp" "$tarball"
    find "$dir" -maxdepth 1 -name "debian-$SUITE-minbase-*.tar" ! -path "$tarball" -delete
    log "Debian $SUITE root filesystem: $((SECONDS - start))s ($(du -h "$tarball" | cut -f1))"
  fi
  echo "$tarball"
}

# Commits the cached root filesystem as debian:<suite>-slim unless the store has it already.
ensure_base() {
  local tarball stamp="$store/base-$SUITE" id ctr
  tarball=$(base_rootfs)
  id=$(image_id "$base_ref")
  if [[ -n $id && -f $stamp && $(cat "$stamp") == "$(basename "$tarball") $id" ]]; then
    return
  fi
  local start=$SECONDS
  ctr=$(bah from scratch)
  bah add --quiet "$ctr" "$tarball" / >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd bash "$ctr"
  bah commit --quiet --rm "$ctr" "$base_ref" >/dev/null
  id=$(image_id "$base_ref")
  echo "$(basename "$tarball") $id" >"$stamp"
  log "base image $base_ref committed from $(basename "$tarball"): $((SECONDS - start))s"
}

# ---- build inputs -------------------------------------------------------------------------------
want() { [[ " ${selected[*]} " == *" $1 "* ]]; }

# One package per cargo call, as the tests build them (tests/src/lib.rs workspace_binary): building
# both at once unifies their dependencies' features differently and recompiles half the tree.
build_rust() {
  local package bin extra=()
  [[ $profile == release ]] && extra+=(--release)
  for package in api-server:api-server beer-meetup-operator:beer-meetup-operator; do
    bin=${package#*:}
    (cd "$root" && cargo build -p "${package%%:*}" --bin "$bin" "${extra[@]}")
  done
}

# npm run build when web/dist is missing or older than any source of the app.
build_web() {
  local dist="$root/web/dist/index.html"
  if [[ -f $dist ]] && [[ -z $(find "$root/web/src" "$root/web/public" "$root/web/index.html" \
    "$root/web/package-lock.json" "$root/web/vite.config.ts" -newer "$dist" -print -quit) ]]; then
    return
  fi
  (cd "$root" && make --no-print-directory web-build)
}

if ((build_inputs)); then
  if want api-server || want operator; then timed "cargo build ($profile)" build_rust; fi
  if want web; then timed "web build" build_web; fi
  # test-deps.sh only when a tool is missing: it may be running already (make test-deps), and two
  # runs must not build the same tool at once.
  if { want ferretdb && [[ ! -x $root/.tools/bin/ferretdb ]]; } \
    || { want kube-network-policies && [[ ! -x $root/.tools/bin/kube-network-policies ]]; }; then
    timed "test tools" bash "$root/scripts/test-deps.sh"
  fi
fi

# ---- staging ------------------------------------------------------------------------------------
contexts="$out/contexts"

# copy_binary SRC DEST: the binary without debug sections (a debug build is mostly DWARF).
copy_binary() {
  [[ -x $1 ]] || fail "$1 is missing: build it first (or drop --no-build)"
  objcopy --strip-debug "$1" "$2"
}

# stage NAME DIR: fills DIR with exactly what NAME's Dockerfile copies.
stage() {
  local name=$1 ctx=$2
  case $name in
    pause)
      gcc -Os -static -Wall -Wextra -o "$ctx/pause" "$root/tests/images/pause/pause.c"
      strip "$ctx/pause"
      ;;
    api-server) copy_binary "$root/target/$profile/api-server" "$ctx/api-server" ;;
    operator) copy_binary "$root/target/$profile/beer-meetup-operator" "$ctx/beer-meetup-operator" ;;
    web)
      [[ -f $root/web/dist/index.html ]] || fail "web/dist is missing: run 'make web-build' first"
      cp -R "$root/web/dist" "$ctx/dist"
      cp "$root/web/nginx.conf" "$root/web/nginx-security-headers.conf" \
        "$root/web/docker-entrypoint.sh" "$ctx/"
      ;;
    redis) ;;
    haproxy) ;;
    ferretdb) copy_binary "$root/.tools/bin/ferretdb" "$ctx/ferretdb" ;;
    kube-network-policies)
      copy_binary "$root/.tools/bin/kube-network-policies" "$ctx/kube-network-policies"
      ;;
  esac
}

# The files NAME's context is staged from (for the quick check below).
sources_of() {
  case $1 in
    pause) echo "$root/tests/images/pause/pause.c" ;;
    api-server) echo "$root/target/$profile/api-server" ;;
    operator) echo "$root/target/$profile/beer-meetup-operator" ;;
    web)
      find "$root/web/dist" -type f 2>/dev/null
      printf '%s\n' "$root/web/nginx.conf" "$root/web/nginx-security-headers.conf" "$root/web/docker-entrypoint.sh"
      ;;
    redis) ;;
    haproxy) ;;
    ferretdb) echo "$root/.tools/bin/ferretdb" ;;
    kube-network-policies) echo "$root/.tools/bin/kube-network-policies" ;;
  esac
}

# The base image's id in our store (empty with docker/podman, whose FROM pulls it).
base_id=""

# key_header NAME: what every key of NAME starts with.
key_header() {
  local base=""
  grep -q "^FROM debian:" "$(dockerfile_of "$1")" && base=$base_id
  echo "$builder $SUITE $base $(image_ref "$1")"
  cat "$(dockerfile_of "$1")"
}

# quick_key NAME: the sources' names, sizes and times — equal means unchanged, without staging
# (stripping and hashing the debug binaries takes seconds).
quick_key() {
  {
    key_header "$1"
    sources_of "$1" | sort | while read -r f; do stat -L -c '%n %s %Y %a' "$f" 2>/dev/null || echo "$f missing"; done
  } | sha256sum | cut -c1-16
}

# content_key NAME CTX: hash of everything the image is made of.
content_key() {
  local name=$1 ctx=$2
  {
    key_header "$name"
    (cd "$ctx" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
    (cd "$ctx" && find . -print0 | sort -z | xargs -0r stat -c '%n %a')
  } | sha256sum | cut -c1-16
}

# ---- build, export, import ----------------------------------------------------------------------
build_image() {
  local name=$1 ref ctx archive key quick
  ref=$(image_ref "$name")
  ctx="$contexts/$name"
  archive="$out/$name.oci.tar"
  quick=$(quick_key "$name")
  if [[ -f $archive && -f $archive.key && -f $archive.quick && $(cat "$archive.quick") == "$quick" ]]; then
    log "$name: unchanged ($ref)"
    return
  fi
  rm -rf "$ctx" && mkdir -p "$ctx"
  stage "$name" "$ctx"
  key=$(content_key "$name" "$ctx")
  if [[ -f $archive && -f $archive.key && $(cat "$archive.key") == "$key" ]]; then
    echo "$quick" >"$archive.quick"
    log "$name: unchanged ($ref)"
    return
  fi
  local start=$SECONDS
  case $builder in
    buildah)
      # --pull=false: the base comes from our store, never from a registry. --layers keeps the
      # package-install step cached when only the copied binary changes.
      bah bud --quiet --pull=false --layers --isolation chroot --build-arg "DEBIAN_RELEASE=$SUITE" \
        -f "$(dockerfile_of "$name")" -t "$ref" "$ctx" >"$out/$name.build.log" 2>&1 \
        || { tail -30 "$out/$name.build.log" >&2; fail "building $name failed (log: $out/$name.build.log)"; }
      rm -f "$archive.tmp"
      bah push --quiet "$ref" "oci-archive:$archive.tmp:$ref" >>"$out/$name.build.log" 2>&1 \
        || fail "exporting $name failed (log: $out/$name.build.log)"
      ;;
    *)
      "$builder" build --build-arg "DEBIAN_RELEASE=$SUITE" -f "$(dockerfile_of "$name")" -t "$ref" \
        "$ctx" >"$out/$name.build.log" 2>&1 \
        || { tail -30 "$out/$name.build.log" >&2; fail "building $name failed (log: $out/$name.build.log)"; }
      "$builder" save -o "$archive.tmp" "$ref" || fail "exporting $name failed"
      ;;
  esac
  mv "$archive.tmp" "$archive"
  echo "$key" >"$archive.key"
  echo "$quick" >"$archive.quick"
  log "$name: built $ref in $((SECONDS - start))s ($(du -h "$archive" | cut -f1))"
}

# The digest of the (single) manifest in an OCI archive; empty for other formats.
archive_digest() {
  tar -xOf "$1" index.json 2>/dev/null | sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p' | head -n 1
}

import_image() {
  local name=$1 ref archive digest have
  ref=$(image_ref "$name")
  archive="$out/$name.oci.tar"
  digest=$(archive_digest "$archive")
  have=$(ctr -a "$CONTAINERD_ADDRESS" -n k8s.io images ls "name==$ref" 2>/dev/null \
    | awk -v ref="$ref" '$1 == ref { print $3 }')
  if [[ -n $digest && $have == "$digest" ]]; then
    log "$name: already in containerd"
    return
  fi
  local start=$SECONDS
  ctr -a "$CONTAINERD_ADDRESS" -n k8s.io images import "$archive" >/dev/null \
    || fail "importing $archive into containerd at $CONTAINERD_ADDRESS failed"
  log "$name: imported into containerd in $((SECONDS - start))s"
}

total=$SECONDS
if [[ $builder == buildah ]]; then
  for name in "${selected[@]}"; do
    if grep -q "^FROM debian:" "$(dockerfile_of "$name")"; then
      ensure_base
      base_id=$(image_id "$base_ref")
      break
    fi
  done
fi
for name in "${selected[@]}"; do build_image "$name"; done
# Replaced image versions (and the layer cache) pile up in our store: prune past 4 GiB.
if [[ $builder == buildah ]] && (($(du -sm "$store/storage" | cut -f1) > 4096)); then
  timed "pruned unused images from $store" bah rmi --prune >/dev/null
fi
if [[ -n ${CONTAINERD_ADDRESS:-} ]]; then
  command -v ctr >/dev/null || fail "CONTAINERD_ADDRESS is set but ctr is not installed"
  for name in "${selected[@]}"; do import_image "$name"; done
fi
log "images ready in $((SECONDS - total))s: $(for n in "${selected[@]}"; do printf '%s ' "$(image_ref "$n")"; done)"
