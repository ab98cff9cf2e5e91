#!/usr/bin/env bash
# The GPU run, in one call of the device tool (docs/CUDA.md, "The GPU run"). It needs .gpu-pack/
# (`npm run gpu:pack` here), which the call carries; everything it reports lands in $OUT:
# run.log, facts.txt, doctor.json, placement.log, results.json, summary.txt (and model.tar.xz when a
# Fashion-MNIST training split was found there and the default model was trained further).
#
#   bash bench/gpu/run.sh [--device cuda|cpu] [--budget SECONDS] [--quick]
#
# --device cpu --quick is the dry run on a machine without a GPU (bench/gpu/dry-run.sh).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DEVICE=cuda
BUDGET=330
QUICK=()
while (($#)); do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --quick) QUICK=(--quick); shift ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
: "${OUT:?set OUT to the folder that comes back}"
mkdir -p "$OUT"
STAGE="${TRIDENT_GPU_STAGE:-/tmp/trident-gpu}"
RESULTS="$STAGE/results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
START=$(date +%s)
exec > >(tee -a "$OUT/run.log") 2>&1
left() { echo $((BUDGET - ($(date +%s) - START))); }
die() { echo "run.sh: $*"; exit 1; }

# Runs one phase under a time cap: its own, or what is left of the budget.
phase() {
  local name=$1 cap=$2 t l s rc
  shift 2
  l=$(left)
  t=$((cap < l ? cap : l))
  if ((t < 10)); then echo "== $name: skipped, ${l}s of the budget left"; return; fi
  echo "== $name (at most ${t}s)"
  s=$(date +%s)
  timeout --kill-after=10 "$t" "$@"
  rc=$?
  echo "== $name: exit $rc after $(($(date +%s) - s))s"
}

# --- unpack .gpu-pack, checking every file against MANIFEST.json -------------------------------
PACK="$ROOT/.gpu-pack"
[[ -f "$PACK/MANIFEST.json" ]] || die "no .gpu-pack/MANIFEST.json: run \`npm run gpu:pack\` and carry .gpu-pack"
expected() { grep -A2 "\"$1\": {" "$PACK/MANIFEST.json" | sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p'; }
for f in node.xz node_modules.tar.xz dist.tar.xz provider.tar.xz; do
  [[ "$(sha256sum "$PACK/$f" | cut -d' ' -f1)" == "$(expected "$f")" ]] || die "$f does not match MANIFEST.json"
done
echo "pack: $(grep -m1 '"commit"' "$PACK/MANIFEST.json" | tr -d ' ,')"
if [[ -z "${TRIDENT_GPU_USE_CARRIED_NODE:-}" ]] && command -v node >/dev/null && (($(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0) >= 20)); then
  NODE="$(command -v node)"
else
  xz -dc "$PACK/node.xz" >"$STAGE/node" && chmod +x "$STAGE/node" || die "could not unpack node"
  NODE="$STAGE/node"
fi
echo "node: $NODE $("$NODE" -v)"
rm -rf node_modules dist
xz -dc "$PACK/node_modules.tar.xz" | tar -x || die "could not unpack node_modules"
xz -dc "$PACK/dist.tar.xz" | tar -x || die "could not unpack dist"
BINDING=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
xz -dc "$PACK/provider.tar.xz" | tar -x -C "$BINDING" || die "could not unpack the CUDA provider"
STRIPPED=$(sed -n 's/.*"strippedSha256": "\([0-9a-f]*\)".*/\1/p' "$PACK/MANIFEST.json")
[[ "$(sha256sum "$BINDING/libonnxruntime_providers_cuda.so" | cut -d' ' -f1)" == "$STRIPPED" ]] || die "the CUDA provider does not match MANIFEST.json"
echo "unpacked in $(($(date +%s) - START))s"

# --- environment: PyTorch's Python and the CUDA libraries its pip packages hold -------------------
PY=python3
[[ -x /opt/torch/.venv/bin/python3 ]] && PY=/opt/torch/.venv/bin/python3
[[ "$DEVICE" == cpu && -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import torch' 2>/dev/null && PY=/usr/bin/python3
export TRIDENT_PYTHON="$PY"
SITE=$("$PY" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || true)
# The driver's libcuda.so.1 where the image mounts it, if the loader does not know it already.
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [[ -e "$d/libcuda.so.1" ]] && ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 ' && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
for d in "$SITE"/nvidia/cu13/lib "$SITE"/nvidia/cudnn/lib "$SITE"/nvidia/*/lib; do
  [[ -d "$d" && ":${LD_LIBRARY_PATH:-}:" != *":$d:"* ]] && LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
# Kernels load when first used: the pack zeroed the ones Trident never runs.
export CUDA_MODULE_LOADING=LAZY
for d in /opt /root /data /datasets /home /usr/share /mnt /workspace; do
  [[ -d "$d" ]] || continue
  f=$(timeout 15 find "$d" -maxdepth 6 -name 'train-images-idx3-ubyte*' -size +20M 2>/dev/null | head -1)
  if [[ -n "$f" ]]; then export TRIDENT_FASHION_MNIST_TRAIN="$(dirname "$f")"; break; fi
done
echo "python: $PY; LD_LIBRARY_PATH=$LD_LIBRARY_PATH; Fashion-MNIST training split: ${TRIDENT_FASHION_MNIST_TRAIN:-not found}"

# --- facts and doctor ---------------------------------------------------------------------------
{
  date -u
  uname -a
  echo "cpus: $(nproc)"
  free -g 2>/dev/null | head -2
  timeout 20 nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  echo "node $("$NODE" -v)"
  timeout 60 "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.is_available())' 2>&1
  ls "$SITE"/nvidia 2>/dev/null | tr '\n' ' '
  echo
  if command -v cuobjdump >/dev/null; then
    echo "cuobjdump --list-elf of the stripped provider, entries by architecture:"
    timeout 60 cuobjdump --list-elf "$BINDING/libonnxruntime_providers_cuda.so" 2>&1 | grep -o 'sm_[0-9]*' | sort | uniq -c
  fi
  sed -n '/"provider": {/,/}/p' "$PACK/MANIFEST.json"
} >"$OUT/facts.txt" 2>&1
timeout 120 "$NODE" bin/trident.js doctor --json >"$OUT/doctor.json" 2>"$STAGE/doctor.stderr"
timeout 120 "$NODE" bin/trident.js doctor 2>/dev/null | sed -n '/^execution providers/,/^CUDA provider files/p'

# --- the phases ---------------------------------------------------------------------------------
G=(dist/bench/gpu/device.js)
common=(--device "$DEVICE" --results "$RESULTS" "${QUICK[@]}")
phase "check (fp32: NVIDIA_TF32_OVERRIDE=0)" 90 env NVIDIA_TF32_OVERRIDE=0 "$NODE" "${G[@]}" check --label fp32 "${common[@]}"
phase "check (library defaults)" 60 "$NODE" "${G[@]}" check --label default "${common[@]}"
phase "placement" 60 "$NODE" "${G[@]}" placement "${common[@]}" 2>"$STAGE/placement.stderr"
grep -A4 '^gpu placement:' "$STAGE/placement.stderr"
grep -E 'placed on|Node placements|Memcpy|CUDAExecutionProvider|CPUExecutionProvider' "$STAGE/placement.stderr" | cut -c1-400 | head -400 >"$OUT/placement.log"
phase "step" 120 "$NODE" "${G[@]}" step "${common[@]}"
phase "serve" 120 "$NODE" "${G[@]}" serve "${common[@]}"
TRAIN=$(($(left) - 20))
phase "train" "$TRAIN" "$NODE" "${G[@]}" train --seconds "$((TRAIN > 25 ? TRAIN - 15 : 10))" --out "$OUT" "${common[@]}"
"$NODE" "${G[@]}" report --results "$RESULTS" --out "$OUT"
echo "== done in $(($(date +%s) - START))s; in \$OUT: $(ls "$OUT" | tr '\n' ' ')"
