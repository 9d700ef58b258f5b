#!/usr/bin/env bash
# The whole benchmark on a GPU machine, in one command.
#
#   bash benchmarks/gpu.sh [OUTDIR]     on the GPU machine; results go to OUTDIR (default: $OUT if
#                                       set, else benchmarks/results)
#   bash benchmarks/gpu.sh --wheels     beforehand, on a machine with network: downloads into .whl/
#                                       the pure-Python packages the GPU image lacks (nir, and the
#                                       peers), and git-ignores .whl/
#
# What it runs, in order of importance (so that a cut-short run still has the Targets' numbers):
#   1. N = 16384, forward and forward+backward: the JAX matmul-only bound and nirjax, each under
#      fp32 (precision "highest") and TF32 ("tensorfloat32"), and in bf16 (bf16 operands, fp32
#      accumulation; nirjax through Graph.with_execution(matmul_dtype="bfloat16"), fp32 state).
#   2. The same at N = 4096.
#   3. The SHD-shaped training epoch (nirjax).
#   4. With PEERS=1 (default): Spyx, snnTorch, Norse and the hand-written JAX layer at N = 16384 and
#      4096 beside nirjax, all with
#      TF32 matmuls allowed (torch.backends.cuda.matmul.allow_tf32 = True), one process per case.
# The time budget (BUDGET seconds, default 420) stops launching new cases once spent; every JSON is
# written after each case. Output: lif_layer_gpu_16384.json, lif_layer_gpu_4096.json,
# lif_layer_gpu_peers.json, shd_epoch_gpu.json, gpu_log.txt (at most 8 files, none nested).
#
# The GPU image (see the device notes) has Python 3.12 with JAX + CUDA, equinox, optax, diffrax,
# jaxtyping, h5py, tqdm, flax and torch, and no network: packages it lacks are installed from .whl/
# into /tmp/nirjax-bench-site (only those not already installed), and nirjax runs from this checkout.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WHL=${WHL:-$ROOT/.whl}
PY=${PYTHON:-python3}

if [[ "${1:-}" == "--wheels" ]]; then
    set -e
    mkdir -p "$WHL"
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$WHL" \
        nir==1.0.8 snntorch==1.0.0 nirtorch==2.6 spyx==1.0.0 jax-tqdm==0.4.0 grain==0.2.18 \
        array-record==0.8.6 portpicker==1.6.0
    # Norse 1.1 is published as a source archive only; it builds to a pure-Python wheel.
    "$PY" -m pip wheel -q --no-deps norse==1.1.0 -w "$WHL"
    grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    ls -la "$WHL"
    echo "carry .whl to the GPU machine with the working tree (device run: carry=[\".whl\"])"
    exit 0
fi

OUTDIR=${1:-${OUT:-$ROOT/benchmarks/results}}
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu_log.txt"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
BUDGET=${BUDGET:-420}
PEERS=${PEERS:-1}
# DRYRUN=1: the same steps on the CPU with tiny sizes, to check this script without a GPU.
DEV=(--gpu); BIG=16384; SMALL=4096; SHD=()
if [[ "${DRYRUN:-0}" == 1 ]]; then DEV=(); BIG=64; SMALL=32; SHD=(--samples 300); fi
START=$SECONDS
left() { echo $(( BUDGET - (SECONDS - START) )); }

SITE=/tmp/nirjax-bench-site
if compgen -G "$WHL/*.whl" > /dev/null; then
    # Install only the wheels whose distribution is missing: never shadow the image's own packages.
    mapfile -t NEED < <("$PY" - "$WHL" <<'EOF'
import pathlib, re, sys
from importlib.metadata import PackageNotFoundError, version
for w in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name = w.name.split("-")[0]
    try:
        version(name)
    except PackageNotFoundError:
        try:
            version(re.sub(r"[-_.]+", "-", name))
        except PackageNotFoundError:
            print(w)
EOF
)
    if (( ${#NEED[@]} )); then
        echo "installing from $WHL: ${NEED[*]##*/}"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" "${NEED[@]}" || echo "WARNING: wheel install failed"
    fi
fi
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"

echo "== $(date -u +%FT%TZ) GPU benchmark, out: $OUTDIR, budget ${BUDGET}s"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv || true
"$PY" - <<'EOF' || { echo "JAX or nirjax cannot be imported: see above"; exit 1; }
import os, jax, nirjax
print("python", __import__("sys").version.split()[0], "jax", jax.__version__, jax.devices())
if jax.devices()[0].platform != "gpu" and os.environ.get("DRYRUN") != "1":
    raise SystemExit("JAX sees no GPU")
for m in ("torch", "flax", "spyx", "snntorch", "norse"):
    try:
        mod = __import__(m)
        print(m, getattr(mod, "__version__", "?"))
    except Exception as e:  # noqa: BLE001
        print(m, "unavailable:", type(e).__name__, e)
EOF

CORE=("${DEV[@]}" --impls matmul nirjax --autodiff --precision highest --precision tensorfloat32 --bf16 --runs 5
      --timeout 240)
"$PY" benchmarks/lif_layer.py "${CORE[@]}" --sizes "$BIG" --budget "$(left)" \
    --out "$OUTDIR/lif_layer_gpu_16384.json"
"$PY" benchmarks/lif_layer.py "${CORE[@]}" --sizes "$SMALL" --budget "$(left)" \
    --out "$OUTDIR/lif_layer_gpu_4096.json"
if (( $(left) > 30 )); then
    timeout "$(left)" "$PY" benchmarks/shd_epoch.py "${SHD[@]}" --out "$OUTDIR/shd_epoch_gpu.json" \
        2>&1 | grep -v "batch/s\]$" || true
fi
if [[ "$PEERS" == 1 ]] && (( $(left) > 30 )); then
    "$PY" benchmarks/lif_layer.py "${DEV[@]}" --impls jax nirjax spyx snntorch norse \
        --precision tensorfloat32 --sizes "$BIG" "$SMALL" --runs 5 --timeout 240 \
        --budget "$(left)" --out "$OUTDIR/lif_layer_gpu_peers.json"
fi
echo "== done in $(( SECONDS - START )) s; files in $OUTDIR"
ls -la "$OUTDIR"
