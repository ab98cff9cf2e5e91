#!/usr/bin/env bash
# The GPU run on this machine's CPU, in a copy of exactly what the device tool sends (tracked files,
# untracked ones git does not ignore, and .gpu-pack), with the carried Node.js. Prints the carry
# size and checks what comes back against the tool's limits (8 files, 2 folders deep).
#
#   bash bench/gpu/dry-run.sh [--budget SECONDS]      (after `npm run gpu:pack`)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[[ -f "$ROOT/.gpu-pack/MANIFEST.json" ]] || { echo "dry-run: run \`npm run gpu:pack\` first" >&2; exit 1; }
SCRATCH=$(mktemp -d /tmp/trident-gpu-dry-XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
TREE="$SCRATCH/tree"
mkdir -p "$TREE" "$SCRATCH/out"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$TREE" 2>/dev/null || true)
cp -r "$ROOT/.gpu-pack" "$TREE/"
echo "carry: $(du -sb --apparent-size "$TREE" | cut -f1) bytes ($(du -sb --apparent-size "$TREE" | awk '{printf "%.2f", $1 / 1048576}') MiB of 64)"
OUT="$SCRATCH/out" TRIDENT_GPU_STAGE="$SCRATCH/stage" TRIDENT_GPU_USE_CARRIED_NODE=1 \
  bash "$TREE/bench/gpu/run.sh" --device cpu --quick --budget "${2:-240}"
echo "back from \$OUT:"
(cd "$SCRATCH/out" && find . -type f -printf '%d %s %p\n' | sort -k3)
files=$(find "$SCRATCH/out" -type f | wc -l)
deep=$(find "$SCRATCH/out" -mindepth 3 -type f | wc -l)
((files <= 8 && deep == 0)) || { echo "dry-run: \$OUT breaks the device tool's limits ($files files, $deep too deep)"; exit 1; }
grep -q 'phases with no result' "$SCRATCH/out/summary.txt" && { echo "dry-run: a phase failed"; exit 1; }
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); if (!r.providers?.length) process.exit(1)' "$SCRATCH/out/doctor.json" ||
  { echo "dry-run: doctor.json is not a doctor report"; exit 1; }
echo "dry-run: ok"
