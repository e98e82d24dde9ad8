#!/bin/sh
# Regenerates the committed bindings from catalog.thrift and inventory.thrift. The output is committed because a
# fresh machine has no Thrift compiler; this needs Debian's thrift-compiler (0.17).
set -eu
cd "$(dirname "$0")"
rm -rf gen-nodejs gen-py
for idl in catalog.thrift inventory.thrift; do thrift --gen js:node,ts --gen py -o . "$idl"; done
