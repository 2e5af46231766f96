#!/usr/bin/env bash
# Builds the real Kubernetes API server that the Kubernetes variable store's
# tests run (variables/kubestore/kubetest starts it, with etcd, on loopback
# ports), and installs etcd when it is missing. No package ships
# kube-apiserver, but the Go module proxy serves Kubernetes' sources: a
# scratch module outside the repository requires k8s.io/kubernetes and maps
# each of its staging modules to the published k8s.io/NAME release. The
# first build takes 15-20 minutes of 2 cores; later ones reuse the binary,
# kept in the user's cache directory, and print its path at once.
#
#   scripts/kube-apiserver.sh          # build if needed; print the binary's path
#   KEYFLOW_KUBE_APISERVER=/path/kube-apiserver go test ./variables/kubestore/...
#                                      # (tests find the cached binary without it)
set -euo pipefail

version=v1.37.2                    # kubetest.Version
staging=v0.${version#v1.}          # k8s.io/api, client-go, ... v0.37.2
cache="${XDG_CACHE_HOME:-$HOME/.cache}/keyflow/kube-apiserver/$version"
bin="$cache/kube-apiserver"

if ! command -v etcd >/dev/null 2>&1; then
	echo "kube-apiserver.sh: installing etcd-server" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >&2
fi

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache/src"
exec 9>"$cache/build.lock"
flock 9 # one build at a time; a second caller waits and reuses it
if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

cd "$cache/src"
export GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
kgomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
{
	echo "module keyflow.local/kube-apiserver"
	echo
	echo "go $(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"
	echo
	echo "require k8s.io/kubernetes $version"
	echo
	echo "replace ("
	# k8s.io/NAME => ./staging/src/k8s.io/NAME  becomes  k8s.io/NAME => k8s.io/NAME v0.x.y
	awk -v v="$staging" '$2 == "=>" && $3 ~ /^\.\/staging\/src\// { print "\t" $1 " => " $1 " " v }' "$kgomod"
	echo ")"
} >go.mod
echo "kube-apiserver.sh: building kube-apiserver $version (15-20 min on 2 cores the first time)" >&2
go get "k8s.io/kubernetes/cmd/kube-apiserver@$version" >&2
go build -o "$bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
mv "$bin.tmp" "$bin"
echo "$bin"
