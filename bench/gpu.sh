#!/usr/bin/env bash
# The GPU checks, as one command for a machine with a CUDA GPU that has PyTorch but no internet,
# no vaekit and no datasets: the throughput benchmark with every contender on the GPU, and short
# `vaekit train` / `vaekit eval` runs through the GPU paths (bf16 autocast, channels_last for
# conv nets, training.compile). Its results go to $OUT (default: gpu-out/), six files.
#
# Prepare once, in the repository root, on a machine with the datasets and PyPI:
#   echo /.device/ >> .git/info/exclude
#   mkdir -p .device/data/MNIST/raw && cp ../shared/datasets/MNIST/raw/*.gz .device/data/MNIST/raw/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .device/whl pythae==0.1.2 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
# (14 MB: MNIST and the wheels pythae needs beyond what a PyTorch image has; use the Python version
# of the GPU machine.) Then run `bash bench/gpu.sh` there with .device beside the code. It takes a
# few minutes; BENCH_ARGS (default "--rounds 1 --later-epoch 0") go to bench/throughput.py.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
DEVICE="${DEVICE:-cuda}"  # DEVICE=cpu runs the same steps on a CPU (to try the script where there is no GPU)
if [ -d .device/whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/vaekit-site .device/whl/*.whl \
    || { echo "could not install the wheels in .device/whl"; exit 1; }
fi
export PYTHONPATH="/tmp/vaekit-site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" VAEKIT_DATA_DIR="$PWD/.device/data"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/nvidia-smi.txt"
python3 -c "import torch, vaekit$([ "${BENCH:-1}" = 0 ] || echo ', pythae'); print('torch', torch.__version__, 'vaekit', vaekit.__version__,
      'GPU', torch.cuda.get_device_name() if torch.cuda.is_available() else None)" \
  || { echo "torch, vaekit or pythae does not import"; exit 1; }

status=0
BENCH="${BENCH:-1}"  # BENCH=0: only the CLI's GPU paths below, without the throughput benchmark (and pythae)
# the benchmark first: it is what the checks are for, and it writes its table only at its end
[ "$BENCH" = 0 ] || timeout 420 python3 bench/throughput.py --device "$DEVICE" ${BENCH_ARGS:---rounds 1 --later-epoch 0} \
  --out "$OUT/throughput-gpu.md" 2>&1 | grep -v "Warning" | tee "$OUT/throughput.log" || status=1
# the GPU paths of the CLI: bf16 autocast (precision=auto), channels_last conv, compile; pictures and eval.
# The run folders stay in $RUNS: $OUT gets a few files only (a device machine hands back at most 8).
RUNS="${RUNS:-/tmp/vaekit-gpu-runs}"
for args in "--arch mlp" "--arch conv --channels 32,64" "--arch mlp training.compile=true"; do
  name=$(echo "$args" | tr -c 'a-z0-9\n' '-' | tr -s '-')
  echo "== vaekit train $args" >> "$OUT/train.log"
  timeout 120 python3 -m vaekit train --data mnist --epochs 2 --device "$DEVICE" --no-progress $args \
    --out "$RUNS/run$name" >> "$OUT/train.log" 2>&1 || { status=1; echo "train $args failed"; }
done
tail -n 30 "$OUT/train.log"
cp "$RUNS/run-arch-conv-channels-32-64/samples.png" "$OUT/conv-samples.png" 2>/dev/null || status=1
timeout 120 python3 -m vaekit eval "$RUNS/run-arch-mlp" --nll-samples 1000 --limit 1000 > "$OUT/eval.log" 2>&1 || status=1
tail -n 12 "$OUT/eval.log"
exit $status
