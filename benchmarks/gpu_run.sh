#!/usr/bin/env bash
# The command a lent GPU machine runs, with the folder .gpu carried beside the working tree:
#   .gpu/horse2zebra/{trainA,trainB}          ../shared/tools/compact-dataset ../shared/datasets/horse2zebra .gpu/horse2zebra 85
#   .gpu/gan-compression-horse2zebra-G.pth    cp ../shared/reference/gan-compression-horse2zebra-G.pth .gpu/
# There (no network): installs cycletools without dependencies (the machine's torch, torchvision,
# pluggy, pillow, safetensors, tqdm are used) and runs benchmarks/gpu_suite.py into $OUT
# (MINUTES=8 by default; the device call: MINUTES=8 bash benchmarks/gpu_run.sh,
# carry [".gpu"], timeout_s 540). What comes back: report.jsonl, suite.log, cuda-tests.log,
# horse2zebra.fast.safetensors, generators.tar.part0-2, samples.jpg (8 files, each under 16 MiB).
#
#   bash benchmarks/gpu_run.sh --dry-run    here, before the call: checks .gpu and the upload size
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--dry-run" ]; then
  missing=0
  for path in .gpu/horse2zebra/trainA .gpu/horse2zebra/trainB .gpu/gan-compression-horse2zebra-G.pth; do
    [ -e "$path" ] || { echo "missing: $path (see the top of this file)"; missing=1; }
  done
  for side in trainA trainB; do
    count=$(find ".gpu/horse2zebra/$side" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) 2>/dev/null | wc -l)
    echo "$side: $count images"
    [ "$count" -gt 0 ] || { echo "no images in .gpu/horse2zebra/$side"; missing=1; }
  done
  # What travels: tracked files, untracked files git does not ignore, and the carried .gpu.
  bytes=$( { git ls-files -z --cached --others --exclude-standard; find .gpu -type f -print0; } \
           | xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
  limit=$((64 * 1024 * 1024))
  echo "upload: $((bytes / 1024 / 1024)) MiB of $((limit / 1024 / 1024)) MiB (working tree + .gpu)"
  [ "$bytes" -le "$limit" ] && [ "$missing" = 0 ]
  exit
fi

out="${OUT:-gpu-report}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if ! python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . > /tmp/cycletools-install.log 2>&1; then
  cat /tmp/cycletools-install.log
  echo "cycletools could not be installed (above); nothing was run"
  exit 1
fi
python3 benchmarks/gpu_suite.py --out "$out" --minutes "${MINUTES:-8}" 2>&1 | tee "$out/suite.log"
