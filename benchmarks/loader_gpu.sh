#!/usr/bin/env bash
# The GPU rows of docs/loader_benchmarks.md, in one go on a machine with torch, pyarrow and a CUDA GPU
# (no Spark needed): generate the two synthetic tables, then measure. Results: $RESULTS (JSON lines).
#   bash benchmarks/loader_gpu.sh [work dir] [results file]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-data/bench}
RESULTS=${2:-docs/loader_benchmarks.jsonl}
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" -c 'import sys, torch, pyarrow, numpy; print(sys.version.split()[0], "torch", torch.__version__, "pyarrow", pyarrow.__version__, "numpy", numpy.__version__, "cpus", __import__("os").cpu_count())'

# Which fused attention kernels take the model's padding mask (the math fallback would not fit at B = 4096).
"$PYTHON" - <<'PY' || true
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention

if torch.cuda.is_available():
    q = torch.randn(8, 4, 1001, 32, device="cuda", dtype=torch.bfloat16)
    keep = torch.rand(8, 1, 1, 1001, device="cuda") < 0.7
    for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.FLASH_ATTENTION):
        try:
            with sdpa_kernel([backend]):
                scaled_dot_product_attention(q, q, q, attn_mask=keep)
            print(backend.name, "takes the mask")
        except RuntimeError as error:
            print(backend.name, "refuses:", str(error).splitlines()[0][:150])
PY

# One day of 1 M customer-days (~10 M impressions) for the loader; three days of 50 k for training.
"$PYTHON" -m benchmarks.loader generate --out "$WORK/loader" --customer-days "${CUSTOMER_DAYS:-1000000}" &
loader=$!
"$PYTHON" -m benchmarks.loader generate --out "$WORK/loader_days" --customer-days "${TRAIN_CUSTOMER_DAYS:-50000}" \
    --days 3 --workers 3 &
loader_days=$!
wait $loader && wait $loader_days
du -sh "$WORK/loader" "$WORK/loader_days"

"$PYTHON" -m benchmarks.loader run --table "$WORK/loader" --train-table "$WORK/loader_days" --device "${DEVICE:-cuda}" \
    --batch-size 4096 --train-batch-sizes ${TRAIN_BATCH_SIZES:-1024 4096} --train-steps "${TRAIN_STEPS:-700}" --profile-warmup 20 --drop-caches \
    --results "$RESULTS"
