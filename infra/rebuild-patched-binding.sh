#!/usr/bin/env bash
# Runs after patch-package (npm's postinstall). patches/@confluentinc+kafka-javascript+*.patch adds
# produceBatch to the binding's C++ producer, but npm compiled the module before the patch was
# applied: recompile what the patch changed. `node-gyp build` (not rebuild) reuses the build npm
# just made, so only the patched files compile (seconds; librdkafka's minutes are not repeated).
# A module that came prebuilt has no build to reuse: it is left as it is, and the adapter then
# produces record by record (src/kafka/confluent-producer.ts), as with the unpatched binding.
set -euo pipefail
dir=node_modules/@confluentinc/kafka-javascript
module=$dir/build/Release/confluent-kafka-javascript.node
[[ -f $dir/src/producer.cc ]] || exit 0
if [[ ! -f $dir/build/Makefile ]]; then
  echo "rebuild-patched-binding: $dir has no build of its own (prebuilt?); produceBatch is not in it" >&2
  exit 0
fi
if [[ $module -nt $dir/src/producer.cc && $module -nt $dir/src/producer.h ]]; then exit 0; fi
echo "rebuild-patched-binding: compiling the patched @confluentinc/kafka-javascript producer"
# npm names its own node-gyp in npm_config_node_gyp for lifecycle scripts; node-gyp on PATH otherwise.
if [[ -n ${npm_config_node_gyp:-} ]]; then
  (cd "$dir" && node "$npm_config_node_gyp" build --loglevel=warn)
else
  (cd "$dir" && node-gyp build --loglevel=warn)
fi
