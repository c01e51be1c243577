#!/usr/bin/env bash
# Installs and builds everything the tests need, idempotently.
# Built tools live in a per-user cache keyed by version (and by the wrapper module's content), and are
# linked into .tools/bin so a fresh clone reuses them. A warm run only checks stamps and links.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${BEER_MEETUP_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/beer-meetup-tools}
bin="$root/.tools/bin"
mkdir -p "$cache" "$bin"
# One run at a time per user: two runs would build the same tool into the same folder.
exec 9>"$cache/.test-deps.lock"
flock 9

KUBERNETES_VERSION=v1.34.4
KWOK_VERSION=v0.7.0
HELM_VERSION=v3.19.5
COREDNS_VERSION=v1.14.7
CRICTL_VERSION=v1.34.0
ZINCSEARCH_VERSION=v0.4.10

log() { printf '[test-deps] %s\n' "$*" >&2; }
fail() { printf '[test-deps] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- Debian packages --------------------------------------------------------------------------
apt_packages=(redis-server redis-sentinel haproxy chromium fonts-noto-color-emoji fonts-dejavu-core openssl nginx-light
  # FerretDB's second backend (the store conformance suite and the API mix benchmark run on both).
  postgresql
  # The real node: container runtime, CNI plugins, kube-proxy's and the fixture's network tools.
  containerd runc containernetworking-plugins iptables conntrack iproute2 socat nftables
  # Container images without a daemon (scripts/images.sh).
  buildah mmdebstrap uidmap)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  start=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || fail "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
  # The packages start their services; the tests start their own on free ports.
  for svc in redis-server redis-sentinel haproxy nginx containerd postgresql; do service "$svc" stop >/dev/null 2>&1 || true; done
  log "Debian packages installed in $((SECONDS - start))s"
fi

# ---- Go-built tools ---------------------------------------------------------------------------
command -v go >/dev/null || fail "Go is required to build the control plane (go not on PATH)"

# content_key DIR: a short hash of a wrapper module so editing it rebuilds the tool.
content_key() { cat "$1"/go.mod "$1"/go.sum "$1"/*.go 2>/dev/null | sha256sum | cut -c1-12; }

# build_tool NAME KEY OUT_NAMES... -- COMMAND: runs COMMAND with $out set, once per key.
build_tool() {
  local name=$1 key=$2; shift 2
  local outs=()
  while [[ $1 != -- ]]; do outs+=("$1"); shift; done
  shift
  local dir="$cache/$name-$key"
  if [[ ! -f $dir/.done ]]; then
    log "building $name ($key) ..."
    local start=$SECONDS
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    if ! out="$dir.tmp" "$@" >"$cache/$name-$key.log" 2>&1; then
      tail -30 "$cache/$name-$key.log" >&2
      fail "building $name failed (full log: $cache/$name-$key.log)"
    fi
    rm -rf "$dir" && mv "$dir.tmp" "$dir" && touch "$dir/.done"
    log "built $name in $((SECONDS - start))s"
  fi
  for o in "${outs[@]}"; do
    [[ -x $dir/$o ]] || fail "$name did not produce $o"
    ln -sfn "$dir/$o" "$bin/$o"
  done
}

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
tools="$root/tests/tools"

build_kube() {
  cd "$tools/kube"
  local minor
  minor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION")
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
    go build -trimpath -ldflags "$ld" -o "$out/$c" "k8s.io/kubernetes/cmd/$c"
  done
}
build_wrapper() { cd "$tools/$1" && go build -trimpath -ldflags "-s -w" -o "$out/$1" .; }
build_installed() { GOBIN="$out" go install -trimpath -ldflags "-s -w" "$1"; }
# ZincSearch (an Elasticsearch-compatible API for the place search tests) does not `go install`:
# build tests/tools/zincsearch/main.go inside a copy of the published module (see that file).
build_zincsearch() {
  local dir src="$out/src"
  dir=$(cd "$out" && go mod download -json "github.com/zincsearch/zincsearch@$ZINCSEARCH_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $dir && -d $dir ]] || { echo "go mod download gave no module folder"; return 1; }
  cp -R "$dir" "$src" && chmod -R u+w "$src"
  mkdir -p "$src/web/dist" "$src/cmd/zincsearch-es"
  echo '<!doctype html><title>ZincSearch (API only)</title>' >"$src/web/dist/index.html"
  cp "$tools/zincsearch/main.go" "$src/cmd/zincsearch-es/"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/zincsearch" ./cmd/zincsearch-es)
  rm -rf "$src"
}

build_tool etcd "$(content_key "$tools/etcd")" etcd -- build_wrapper etcd
build_tool ferretdb "$(content_key "$tools/ferretdb")" ferretdb -- build_wrapper ferretdb
build_tool kwok "$KWOK_VERSION" kwok -- build_installed "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
build_tool helm "$HELM_VERSION" helm -- build_installed "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
build_tool zincsearch "$ZINCSEARCH_VERSION-$(content_key "$tools/zincsearch")" zincsearch -- build_zincsearch
build_tool kubernetes "$KUBERNETES_VERSION-$(content_key "$tools/kube")" \
  kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy -- build_kube
# Cluster DNS for the real node's pods (the fixture runs it as a host process).
build_tool coredns "$COREDNS_VERSION" coredns -- build_installed "github.com/coredns/coredns@$COREDNS_VERSION"
# The CRI client: the real node's teardown stops and removes pods through it (CNI DEL runs then).
build_tool crictl "$CRICTL_VERSION" crictl -- build_installed "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"

# The NetworkPolicy enforcer of the e2e's real node (tests/images/kube-network-policies): nftables
# over netlink + nfqueue, no kube-proxy or CNI of its own. v0.8.0 is the newest the module proxy
# serves; its binary is the package ./cmd. Built from a copy of the module whose nftables `queue`
# expressions become the x_tables NFQUEUE target (tests/tools/kube-network-policies/xt_nfqueue.go:
# kernels without CONFIG_NFT_QUEUE, like the test machines', refuse the native expression).
KUBE_NETWORK_POLICIES_VERSION=v0.8.0
build_kube_network_policies() {
  local dir src="$out/src" pkg
  dir=$(cd "$out" && go mod download -json "sigs.k8s.io/kube-network-policies@$KUBE_NETWORK_POLICIES_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $dir && -d $dir ]] || { echo "go mod download gave no module folder"; return 1; }
  cp -R "$dir" "$src" && chmod -R u+w "$src"
  pkg="$src/pkg/networkpolicy"
  perl -0pi -e 's/queue := &expr\.Queue\{Num: uint16\(c\.config\.QueueID\)\}\n\tif c\.config\.FailOpen \{\n\t\tqueue\.Flag = expr\.QueueFlagBypass\n\t\}/queue := xtNFQueue(uint16(c.config.QueueID), c.config.FailOpen)/g' \
    "$pkg/controller.go"
  [[ $(grep -c 'xtNFQueue(' "$pkg/controller.go") == 2 ]] || { echo "controller.go: the queue expressions were not replaced"; return 1; }
  ! grep -q 'expr\.Queue{' "$pkg/controller.go" || { echo "controller.go: a queue expression is left"; return 1; }
  cp "$tools/kube-network-policies/xt_nfqueue.go" "$pkg/"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/kube-network-policies" ./cmd)
  rm -rf "$src"
}
build_tool kube-network-policies "$KUBE_NETWORK_POLICIES_VERSION-$(content_key "$tools/kube-network-policies")" \
  kube-network-policies -- build_kube_network_policies

log "tools ready in .tools/bin"
