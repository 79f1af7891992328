#!/usr/bin/env bash
# The GPU checks (benchmarks/results/gpu_h200.md and gpu_h100.md were made this way): the kernel
# test files on the GPU, the unroll sweep, and the hot-path benchmark suites with torch on CUDA.
# Run from the repository root with a python3 that has jax[cuda], optax, pytest, pytest-xdist and
# hypothesis (torch and torchaudio for the peers' rows); writes under $OUT.
#
#   bash benchmarks/gpu_check.sh            # everything (about 12 minutes with start-up)
#   bash benchmarks/gpu_check.sh tests      # the tests and the fused-head suite (about 4 min)
#   bash benchmarks/gpu_check.sh suites     # the other suites and the unroll sweep (about 6 min)
#
# A device call is limited to 10 minutes, so run the two halves as two calls. Wheels for what the
# GPU image lacks (keras, for the tests that compare with it) can be carried in .whl/ (ignored by
# git); they are installed into /tmp/site when present.
set -o pipefail
PART="${1:-all}"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax JAX_PLATFORMS=cuda \
  XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"

if [ "$PART" = all ] || [ "$PART" = tests ]; then
  echo "=== tests (float32 matmuls at HIGHEST precision: the tests compare with float64)"
  JAX_DEFAULT_MATMUL_PRECISION=highest timeout 300 python3 -m pytest -q -p no:cacheprovider -n 8 \
    -o addopts="" -rf tests/test_ops_cross_entropy.py tests/test_linear_cross_entropy.py \
    tests/test_ctc.py tests/test_ctc_align.py tests/test_ctc_decode.py tests/test_rnnt.py \
    tests/test_distillation.py tests/test_contract.py tests/test_compat_optax.py \
    tests/test_compat_torch.py 2>&1 | tee "$OUT/tests.txt" | tail -25
  echo "=== fused-head suite"
  timeout 200 python3 -m benchmarks --suite linear_cross_entropy --out "$OUT/bench_lce" \
    --no-charts --no-progress 2>&1 | tail -40
fi

if [ "$PART" = all ] || [ "$PART" = suites ]; then
  echo "=== steps per loop iteration of the CTC and RNN-T recursions"
  timeout 200 python3 -m benchmarks.bench_unroll 2>&1 | tee "$OUT/unroll.txt"
  echo "=== benchmark suites"
  timeout 300 python3 -m benchmarks --suite cross_entropy --suite ctc --suite rnnt \
    --suite compat --out "$OUT/bench" --no-charts --no-progress 2>&1 | tail -80
fi
