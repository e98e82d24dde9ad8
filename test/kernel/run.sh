#!/bin/bash
# The real-kernel suite: boots each kernel series in a QEMU VM (vm/run-in-vm.sh)
# and runs test/kernel/**/*.test.ts there with vitest. Exits non-zero when a test
# fails, when a VM fails to boot or times out, or when a report is missing.
#
#   bash test/kernel/run.sh [SERIES...]     default: 6.1 6.12 7.3 (or KMUX_KERNELS="6.1 6.12 7.3")
#   KMUX_KERNEL_TESTS="ktls"                only the test files whose path matches (vitest filter)
#   KMUX_KERNEL_RESULTS_DIR=/tmp/mine       where the JSON reports go (two runs at once need two)
#
# Expects the workspace to be built (npm run test:kernel runs the bootstrap first).
set -u
cd "$(dirname "$0")/../.."
SERIES_LIST=("$@")
[ ${#SERIES_LIST[@]} -gt 0 ] || read -r -a SERIES_LIST <<< "${KMUX_KERNELS:-6.1 6.12 7.3}"

test/kernel/vm/host-deps.sh || { echo "kernel suite: cannot install the host packages the VM needs" >&2; exit 1; }
# Without the addon every guest test would fail the same way; say why once, before booting.
if [ ! -f packages/native/build/Release/kmux_native.node ]; then
  echo "kernel suite: the @kmux/native addon is not built (node scripts/bootstrap.mjs --build-only builds it)" >&2
  cat packages/native/build/addon-build-error.txt >&2 2> /dev/null
  exit 1
fi

RESULTS=${KMUX_KERNEL_RESULTS_DIR:-$PWD/test/kernel/cache/results}
mkdir -p "$RESULTS"
summary=() ; failed=0
for series in "${SERIES_LIST[@]}"; do
  echo
  echo "==================== kernel $series: booting the VM ===================="
  report=$RESULTS/$series.json
  rm -f "$report"
  start=$(date +%s)
  test/kernel/vm/run-in-vm.sh -k "$series" --rw "$RESULTS" --timeout "${KMUX_KERNEL_TIMEOUT:-1800}" -- \
    env KMUX_KERNEL_SERIES="$series" KMUX_KERNEL_RESULTS="$report" \
    node node_modules/vitest/vitest.mjs run --config test/kernel/vitest.kernel.config.ts ${KMUX_KERNEL_TESTS:-}
  rc=$?
  secs=$(( $(date +%s) - start ))
  passed=0 failures=0 skipped=0
  if [ -s "$report" ] && counts=$(node -e '
      const r = require(process.argv[1]);
      console.log(r.numPassedTests, r.numFailedTests, r.numPendingTests + r.numTodoTests)' "$report"); then
    read -r passed failures skipped <<< "$counts"
    line="$series $passed passed, $failures failed"
    [ "$skipped" = 0 ] || line+=", $skipped skipped"
  else
    line="$series no test report"
  fi
  case $rc in
    0) ;;
    124) line+=" (VM timed out)" ;;
    125) line+=" (VM failed)" ;;
    *) line+=" (exit $rc)" ;;
  esac
  line+=" in ${secs}s"
  echo "==================== kernel $series: $line ===================="
  summary+=("$line")
  # A skipped test or a suite with nothing passing proves nothing: both count as failures.
  if [ "$rc" != 0 ] || [ "$failures" != 0 ] || [ "$skipped" != 0 ] || [ "$passed" = 0 ]; then failed=1; fi
done

echo
joined=$(printf '; %s' "${summary[@]}")
echo "kernel suite: ${joined#; }"
exit $failed
