#!/bin/sh
# Builds the Go example service offline, from Debian packages only (no module downloads):
#   golang-go, golang-github-nats-io-go-nats-dev, golang-google-protobuf-dev, protobuf-compiler
#   (scripts/install-deps examples). The Go code of proto/wsgate.proto is generated here, at
#   build time, and never committed.
# Usage: examples/go/build.sh [OUT_DIR]
#   OUT_DIR defaults to examples/go/build (ignored by git); the service is OUT_DIR/chat-service.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
proto_dir=$(cd "$here/../../proto" && pwd)
out=${1:-$here/build}
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in go protoc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "build.sh: $tool not found (scripts/install-deps examples)" >&2
        exit 1
    fi
done
for pkg in github.com/nats-io/nats.go google.golang.org/protobuf/proto; do
    if [ ! -d "/usr/share/gocode/src/$pkg" ]; then
        echo "build.sh: /usr/share/gocode/src/$pkg missing (scripts/install-deps examples)" >&2
        exit 1
    fi
done

# GOPATH mode: Debian installs Go libraries as sources under /usr/share/gocode. A GOPATH of
# our own comes first and holds the service's main package (import path "chat-service") and
# the generated package below it (import path "chat-service/wsgatepb"); protoc-gen-go wants
# a slash in it.
gopath="$out/gopath"
rm -rf "$gopath"
mkdir -p "$gopath/src/chat-service/wsgatepb" "$gopath/bin"
export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS="" GOPROXY=off
# go needs a build cache; without a HOME (some CI shells) it has no default.
if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
    export GOCACHE="$out/gocache"
fi

# protoc-gen-go, built from the sources golang-google-protobuf-dev ships: the generator of
# exactly the runtime the generated code links against. (Debian's own protoc-gen-go package
# cannot be installed next to golang-goprotobuf-dev, which golang-github-nats-io-go-nats-dev
# depends on; /usr/bin/protoc-gen-go from that one is the old v1.3 generator.)
go build -o "$gopath/bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go

# wsgate.proto has no go_package option (it is shared by every language): M maps it to ours.
protoc --plugin=protoc-gen-go="$gopath/bin/protoc-gen-go" \
    --proto_path="$proto_dir" \
    --go_out="$gopath/src/chat-service/wsgatepb" --go_opt=paths=source_relative \
    --go_opt=Mwsgate.proto=chat-service/wsgatepb \
    "$proto_dir/wsgate.proto"

cp "$here/main.go" "$gopath/src/chat-service/"
go build -o "$out/chat-service" chat-service
echo "build.sh: built $out/chat-service" >&2
