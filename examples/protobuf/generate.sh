#!/bin/sh
# Rewrites pricing.json, the protobufjs JSON bundle of pricing.proto, with protobufjs-cli's
# pbjs (a devDependency of examples/). Servers and clients can load either file; the bundle
# needs no .proto parsing at start-up. packages/protobuf's tests fail when it is stale.
set -eu
cd "$(dirname "$0")"
../node_modules/.bin/pbjs -t json -o pricing.json pricing.proto
