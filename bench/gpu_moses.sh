#!/usr/bin/env bash
# MOSES on a GPU, as one command for a lent machine with PyTorch but no internet, no vaekit, no
# RDKit and no datasets: two sequence VAEs (settings A and B below; SETTINGS=A trains A alone) trained
# side by side on all of MOSES's training molecules, then 30,000 SMILES sampled from each. The metrics (RDKit, FCD) are
# computed afterwards where RDKit is: `python bench/moses.py validate` on the samples (validation
# molecules, for choosing) and `evaluate` on the chosen run's folder (the test split).
#
# The number of passes is set by the time box: a one-epoch calibration of the settings at once
# on CAL_MOLECULES molecules measures molecules/s, and each full run gets as many whole epochs as
# fit in TRAIN_S seconds at that rate (the cosine schedule then spans them); --max-minutes stops
# a run that turns out slower after the epoch that crosses the box.
#
# Prepare once, in the repository root (the data travels in .device, which git ignores):
#   mkdir -p .device/data/molecules/moses && cp ../shared/datasets/molecules/moses/{train,test}.csv.gz .device/data/molecules/moses/
# Try it on a CPU with small numbers: DEVICE=cpu CAL_MOLECULES=2000 FULL_MOLECULES=4000 TRAIN_S=20 N=200 bash bench/gpu_moses.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-out}"
RUNS="${RUNS:-/tmp/vaekit-moses-runs}"
DEVICE="${DEVICE:-cuda}"
TRAIN_S="${TRAIN_S:-300}"              # seconds of training per run, all runs at once
DEADLINE="${DEADLINE:-540}"            # seconds after the start by which everything is in $OUT
RESERVE="${RESERVE:-90}"               # of which the last seconds are kept for sampling and packing
CAL_MOLECULES="${CAL_MOLECULES:-100000}"
FULL_MOLECULES="${FULL_MOLECULES:-0}"  # 0: all 1,574,663 (MOSES's training split less 10,000 for validation)
N="${N:-30000}"
SETTINGS="${SETTINGS:-A B}"            # the settings to train side by side (A alone gets the whole GPU)
LOGS="$RUNS/logs"  # every log but the main one travels in runs.tar.gz (a device machine hands back 8 files)
mkdir -p "$OUT" "$LOGS"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" VAEKIT_DATA_DIR="$PWD/.device/data"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
LOG="$OUT/gpu_moses.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$LOG"
python3 -c "import torch, vaekit; print('torch', torch.__version__, 'vaekit', vaekit.__version__,
      'GPU', torch.cuda.get_device_name() if torch.cuda.is_available() else None)" 2>&1 | tee -a "$LOG" \
  || { echo "torch or vaekit does not import"; exit 1; }

# the settings, chosen before the run (bench/results/choices.md): a 3-layer GRU of 512 units (the
# MOSES VAE's decoder size), z of 128, batch 512, Adam 1e-3 on a cosine schedule, the molecule
# defaults' KL warm-up (2,000 steps) and free bits (0.1 nats); A the ELBO (beta 1), B beta 0.2.
# C is A at batch 2048 and Adam 2e-3 (not yet run): on an H200 batch 512 keeps the GPU 54-64% busy
# and batch 2048 90-94%, 2.9x the molecules a second (bench/results/moses_gpu.md)
COMMON="--data moses --model sequence --hidden 512,512,512 --latent-dim 128
        --device $DEVICE --no-progress training.matmul_precision=high"
settings() { case "$1" in A) echo "--batch-size 512 --lr 1e-3 --beta 1";; B) echo "--batch-size 512 --lr 1e-3 --beta 0.2";;
                          C) echo "--batch-size 2048 --lr 2e-3 --beta 1";; esac; }

status=0
t0=$(date +%s)
for s in $SETTINGS; do
  python3 -m vaekit train $COMMON $(settings $s) --max-molecules "$CAL_MOLECULES" --epochs 1 \
    --out "$RUNS/cal-$s" > "$LOGS/cal-$s.log" 2>&1 &
done
wait
rate=$(python3 - "$RUNS" $SETTINGS <<'EOF'
import json, sys
rates = []
for s in sys.argv[2:]:
    try:
        rates.append(json.loads(open(f"{sys.argv[1]}/cal-{s}/metrics.jsonl").readline())["samples_per_s"])
    except (OSError, ValueError, KeyError):
        pass
print(int(min(rates)) if len(rates) == len(sys.argv[2:]) else 0)
EOF
)
echo "calibration: $rate molecules/s per run, settings $SETTINGS at once, in $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
for s in $SETTINGS; do tail -n 3 "$LOGS/cal-$s.log" | tee -a "$LOG"; done
[ "$rate" -gt 0 ] || { echo "the calibration runs failed"; exit 1; }
total=$([ "$FULL_MOLECULES" -gt 0 ] && echo "$FULL_MOLECULES" || echo 1574663)
epochs=$(( (TRAIN_S * rate + total / 2) / total ))  # the nearest whole number: --max-minutes guards the box
molecules=$FULL_MOLECULES
if [ $(( TRAIN_S * rate )) -lt "$total" ]; then  # slower than one pass in the box: one epoch over as many as fit
  epochs=1; molecules=$(( TRAIN_S * rate ))
fi
[ "$epochs" -gt 100 ] && epochs=100
minutes=$(python3 -c "print(round($TRAIN_S * 1.15 / 60, 2))")
echo "full runs: $epochs epochs over $([ "$molecules" -gt 0 ] && echo "$molecules" || echo all) molecules, cosine schedule, box $minutes min" | tee -a "$LOG"

t1=$(date +%s)
for s in $SETTINGS; do
  timeout $(( t0 + DEADLINE - RESERVE - $(date +%s) )) python3 -m vaekit train $COMMON $(settings $s) --max-molecules "$molecules" \
    --epochs "$epochs" --lr-schedule cosine --max-minutes "$minutes" --out "$RUNS/$s" > "$LOGS/train-$s.log" 2>&1 &
done
wait
echo "training done in $(( $(date +%s) - t1 )) s" | tee -a "$LOG"
for s in $SETTINGS; do
  tail -n 6 "$LOGS/train-$s.log" | tee -a "$LOG"
  timeout 150 python3 -m vaekit sample "$RUNS/$s" -n "$N" --seed 0 --out "$OUT/gen-$s.csv" --no-progress 2>&1 | tee -a "$LOG" \
    || status=1
done
# the run folders without their weights (config, vocabulary, metrics, logs) in one file
tar czf "$OUT/runs.tar.gz" -C "$RUNS" --exclude='*.safetensors' --exclude='resume*' $SETTINGS $(printf 'cal-%s ' $SETTINGS) logs 2>>"$LOG" || status=1
# the first setting's weights, in parts under the size a device machine hands back per file (it
# hands back 8 files, so one run's weights)
w=$(echo $SETTINGS | cut -d' ' -f1)
if [ -f "$RUNS/$w/model.safetensors" ]; then
  split -b 15M -d "$RUNS/$w/model.safetensors" "$OUT/$w-model.safetensors.part"
  sha256sum "$RUNS/$w/model.safetensors" | tee -a "$LOG"
fi
echo "all done in $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
exit $status
