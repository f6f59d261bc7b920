#!/usr/bin/env bash
# Every GPU-only check of the project in one go, with a PASS / FAIL summary at the end.
#
#   bash tools/gpu_check.sh            # on a machine with a CUDA GPU and paddlepaddle-gpu 3.3 installed
#   OUT=dir bash tools/gpu_check.sh    # also keep each check's log in dir/
#
# The checks: the tests that need CUDA (mixed precision: float16 O1 with the scaler's state in checkpoints,
# unscale before the clip, overflow skips, O2 and bfloat16 with a float32 EMA), the CPU test suite's trainer
# tests run on the GPU build, the main job with --use-cuda (a short run), tools/bench_overhead.py, and
# data parallel with 2 processes (2 GPUs when there are 2, else both processes on GPU 0).
# Exit status: 0 when every check passed, 1 otherwise, 2 without a usable GPU.
set -u
cd "$(dirname "$0")/.." || exit 2
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! python -c "import paddle, sys; sys.exit(0 if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else 1)"; then
  echo "gpu_check: this Paddle sees no CUDA GPU (install paddlepaddle-gpu on a GPU machine)." >&2
  exit 2
fi
python -c "import paddle; print('paddle', paddle.__version__, 'cuda', paddle.version.cuda(), 'gpus', paddle.device.cuda.device_count(), paddle.device.cuda.get_device_name(0))"
ngpu=$(python -c "import paddle; print(paddle.device.cuda.device_count())")

results=()
check() {
  local name=$1; shift
  local log="$OUT/$(echo "$name" | tr ' /' '__').log"
  echo "=== $name"
  local start=$SECONDS
  if "$@" >"$log" 2>&1; then
    results+=("PASS  $name ($((SECONDS - start)) s)")
  else
    results+=("FAIL  $name ($((SECONDS - start)) s; log: $log)")
  fi
  tail -n 15 "$log"
}

check "GPU tests (AMP, EMA on GPU)" python -m pytest -q -rs tests/test_amp.py
check "trainer tests on the GPU build" python -m pytest -q -x tests/test_accumulation.py tests/test_ema.py \
  tests/test_hooks.py tests/test_trainer.py
check "main job --use-cuda (400 snippets, 1 epoch)" python tools/finetune.py --use-cuda --train-size 400 \
  --epochs 1 --out "$OUT/finetune"
check "main job --use-cuda with AMP from YAML" python tools/train.py -c configs/ulmfit.yml \
  -o Global.use_gpu=true Global.use_amp=true Global.epoch_num=1 Train.dataset.size=320 \
  "Global.save_model_dir=$OUT/yaml_amp"
check "bench_overhead (GPU device)" python tools/bench_overhead.py --rounds 3 --device gpu
if [ "$ngpu" -ge 2 ]; then devices="0,1"; else devices="0,0"; fi
check "2-process data parallel on GPU(s) $devices" python -m paddle.distributed.launch --nproc_per_node 2 \
  --devices "$devices" --log_dir "$OUT/dp_log" tests/trainer_worker.py "$OUT/dp" --batch-size 4 --dropout 0 \
  --samples 64 --accum 2 --use-cuda

echo
echo "gpu_check summary (logs in $OUT):"
failed=0
for r in "${results[@]}"; do
  echo "  $r"
  case $r in FAIL*) failed=1 ;; esac
done
exit $failed
