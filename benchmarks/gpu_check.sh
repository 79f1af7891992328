#!/usr/bin/env bash
# The GPU checks, in one call (benchmarks/results/gpu_h200.md was made this way): the kernel test
# files on the GPU, the unroll sweep, and the hot-path benchmark suites with torch on CUDA.
# Run from the repository root with a python3 that has jax[cuda], optax, keras, pytest,
# pytest-xdist and hypothesis (torch and torchaudio for the peers' rows); writes under $OUT.
set -o pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax JAX_PLATFORMS=cuda \
  XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"

echo "=== tests (float32 matmuls at HIGHEST precision: the tests compare with float64;"
echo "    the multi-device tests need 8 devices and fail on one GPU)"
JAX_DEFAULT_MATMUL_PRECISION=highest timeout 300 python3 -m pytest -q -p no:cacheprovider -n 8 \
  -o addopts="" -rf tests/test_ops_cross_entropy.py tests/test_linear_cross_entropy.py \
  tests/test_ctc.py tests/test_ctc_align.py tests/test_ctc_decode.py tests/test_rnnt.py \
  tests/test_distillation.py tests/test_contract.py tests/test_compat_optax.py \
  tests/test_compat_torch.py 2>&1 | tee "$OUT/tests.txt" | tail -25

echo "=== steps per loop iteration of the CTC and RNN-T recursions"
timeout 300 python3 -m benchmarks.bench_unroll 2>&1 | tee "$OUT/unroll.txt"

echo "=== benchmark suites"
timeout 400 python3 -m benchmarks --suite cross_entropy --suite linear_cross_entropy --suite ctc \
  --suite rnnt --suite compat --out "$OUT/bench" --no-charts --no-progress 2>&1 | tail -80
