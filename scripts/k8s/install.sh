#!/usr/bin/env bash
# scripts/k8s/install.sh: builds a real upstream kube-apiserver for the end-to-end tests from
# Debian bookworm's own packages, and puts it beside etcd and kubectl in
# $SWITCHYARD_K8S_CACHE/bin. Nothing is installed system-wide: apt runs with a private
# configuration and only downloads. Idempotent: a finished build is reused.
#
# Why this way: the package registries we can reach ship no kube-apiserver binary and no
# container image can be pulled, but Debian ships the complete v1.20.2 source of Kubernetes
# (source package `kubernetes`, upstream's vendor/ included), Go 1.19, etcd 3.4 and kubectl
# 1.20. The steps are upstream's `make WHAT=cmd/kube-apiserver` without make: generate
# pkg/generated/openapi with the vendored openapi-gen, then link statically with upstream's
# version ldflags. Go 1.19 needs reflect2 1.0.2, which Debian packages.
#
# Environment: SWITCHYARD_K8S_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/switchyard-k8s),
# DEBIAN_MIRROR (default http://deb.debian.org/debian).
# Cost: ~155 MB of downloads, ~3 minutes on 2 cores, ~210 MB kept.
set -euo pipefail

cache=${SWITCHYARD_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard-k8s}
bin=$cache/bin
work=$cache/build
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
recipe="kube-apiserver v1.20.2 from debian bookworm, switchyard recipe 1"

say() { echo "k8s/install: $*" >&2; }
fail() { say "error: $*"; exit 1; }

if [[ -x $bin/kube-apiserver && -x $bin/etcd && -x $bin/kubectl && -f $bin/.recipe ]] &&
  [[ $(<"$bin/.recipe") == "$recipe" ]]; then
  say "already built in $bin"
  exit 0
fi
started=$SECONDS
for tool in apt-get dpkg-deb tar; do command -v "$tool" >/dev/null || fail "$tool is needed"; done
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r $keyring ]] || fail "$keyring is missing (apt-get install debian-archive-keyring)"

rm -rf "$work"
mkdir -p "$work" "$bin"

# A private apt: its own sources, index, archive cache and an empty dpkg status.
apt=$cache/apt
mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/parts"
: >"$apt/status"
printf 'deb [signed-by=%s] %s bookworm main\ndeb-src [signed-by=%s] %s bookworm main\n' \
  "$keyring" "$mirror" "$keyring" "$mirror" >"$apt/sources.list"
cat >"$apt/apt.conf" <<CONF
Dir::Etc::SourceList "$apt/sources.list";
Dir::Etc::SourceParts "$apt/parts";
Dir::Etc::Preferences "$apt/parts/none";
Dir::Etc::PreferencesParts "$apt/parts";
Dir::State::Lists "$apt/lists";
Dir::State::status "$apt/status";
Dir::Cache "$apt";
Dir::Cache::Archives "$apt/archives";
APT::Sandbox::User "root";
Acquire::Languages "none";
CONF
private_apt() { APT_CONFIG=$apt/apt.conf apt-get -q "$@" >&2; }

say "fetching the bookworm index"
private_apt update
mkdir -p "$work/debs" "$work/source"
say "downloading Go 1.19, reflect2, etcd and kubectl"
(cd "$work/debs" && private_apt download golang-1.19-go golang-1.19-src \
  golang-github-modern-go-reflect2-dev etcd-server kubernetes-client)
say "downloading the kubernetes source package"
(cd "$work/source" && private_apt source --download-only kubernetes/bookworm)
dsc=$(echo "$work"/source/kubernetes_*.dsc)
version=$(sed -n 's/^Version: //p' "$dsc")
[[ $version == *1.20.2* ]] || fail "bookworm now carries kubernetes $version, not 1.20.2"

root=$work/root
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done

# Upstream builds in a GOPATH at k8s.io/kubernetes with modules off.
gopath=$work/gopath
src=$gopath/src/k8s.io/kubernetes
mkdir -p "$src"
if command -v dpkg-source >/dev/null; then
  (cd "$work/source" && dpkg-source --no-check -x "$dsc" "$src.unpacked" >&2)
  rmdir "$src" && mv "$src.unpacked" "$src"
else
  tar -xzf "$work"/source/kubernetes_*.orig.tar.gz -C "$src" --strip-components=1
  tar -xJf "$work"/source/kubernetes_*.debian.tar.xz -C "$src"
  # Debian's patches touch only kubectl's printers; apply them when `patch` exists.
  if command -v patch >/dev/null; then
    grep -v -e '^#' -e '^$' "$src/debian/patches/series" | while read -r p; do
      patch -d "$src" -p1 -s <"$src/debian/patches/$p"
    done
  fi
fi
[[ -d $src/cmd/kube-apiserver ]] || fail "the source has no cmd/kube-apiserver"

export GOROOT=$root/usr/lib/go-1.19 GOPATH=$gopath GOCACHE=$work/gocache \
  GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0
export PATH=$GOROOT/bin:$PATH
cd "$src"
rm -rf vendor/github.com/modern-go/reflect2
cp -r "$root/usr/share/gocode/src/github.com/modern-go/reflect2" vendor/github.com/modern-go/reflect2
rm -f vendor/github.com/modern-go/reflect2/go.mod

# pkg/generated/openapi, over the inputs Makefile.generated_files picks: every package
# outside vendor/ (staging named as vendor/) with a `+k8s:openapi-gen=` tag, bar
# code-generator and sample-apiserver.
say "generating pkg/generated/openapi with $(go version | cut -d' ' -f3)"
go build -o "$work/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
dirs=$(find -H . \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune -o -type f -name '*.go' -print |
  sed 's|^./staging/src|vendor|; s|/[^/]*$||; s|^./||' | LC_ALL=C sort -u)
tagged=$(for d in $dirs; do find "$d" -maxdepth 1 -type f -name '*.go'; done |
  xargs grep -l '^// *+k8s:' | grep -v -E '^vendor/k8s.io/(code-generator|sample-apiserver)/')
packages=$(grep -l '+k8s:openapi-gen=' $tagged | xargs -n1 dirname | LC_ALL=C sort -u |
  sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
"$work/openapi-gen" --logtostderr -i "$packages" -p k8s.io/kubernetes/pkg/generated/openapi \
  -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
  -r "$work/api-rules.report" 2>"$work/openapi-gen.log" ||
  { cat "$work/openapi-gen.log" >&2; fail "openapi-gen failed"; }

say "compiling kube-apiserver (the long step)"
ldflags=$(KUBE_ROOT=$PWD && source hack/lib/init.sh >/dev/null 2>&1 && kube::version::ldflags)
go build -o "$work/kube-apiserver" -installsuffix static -tags selinux,notest \
  -gcflags "-trimpath=$PWD" -asmflags "-trimpath=$PWD" \
  -ldflags "-s -w -buildid= $ldflags" ./cmd/kube-apiserver

install -m 0755 "$work/kube-apiserver" "$bin/kube-apiserver"
install -m 0755 "$root/usr/bin/etcd" "$bin/etcd"
install -m 0755 "$root/usr/bin/kubectl" "$bin/kubectl"
echo "$recipe" >"$bin/.recipe"
cd /
chmod -R u+w "$work" 2>/dev/null || true
rm -rf "$work"
say "built in $((SECONDS - started))s: $("$bin/kube-apiserver" --version), etcd, kubectl in $bin"
