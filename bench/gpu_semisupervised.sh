#!/usr/bin/env bash
# Semi-supervised MNIST with 100 labels on a lent GPU: the SDGM at the setting chosen on validation images
# (bench/results/choices.md: Maaløe et al.'s networks, alpha 50, Adam 3e-4), one process per label draw side by
# side on the one GPU, each stopped by Ctrl-C (SIGINT) after TRAIN_S seconds (its run folder keeps the weights of
# the best validation loss so far), then `vaekit eval` of each: test error on all 10,000 test images.
# The learning rate stays constant (Maaløe et al. decay it by 0.75 every 200 epochs, from 3e-4).
#
#   SEEDS="0 1 2" TRAIN_S=420 bash bench/gpu_semisupervised.sh     # on the device machine, .device/data beside
#
# Needs .device/data/MNIST/raw (see bench/gpu.sh). Results in $OUT: per draw the training log, metrics.jsonl
# (validation error by epoch) and the eval output.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-out}"
RUNS="${RUNS:-/tmp/vaekit-ssl-runs}"
DEVICE="${DEVICE:-cuda}"  # DEVICE=cpu tries the script where there is no GPU
SEEDS="${SEEDS:-0 1 2}"
TRAIN_S="${TRAIN_S:-420}"
EPOCHS="${EPOCHS:-2000}"  # an upper bound: TRAIN_S ends the runs
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" VAEKIT_DATA_DIR="${VAEKIT_DATA_DIR:-$PWD/.device/data}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
status=0
for s in $SEEDS; do
  rm -rf "$RUNS/sdgm_s$s"
  timeout --signal=INT --kill-after=60 "$TRAIN_S" python3 -m vaekit train --data mnist --model sdgm --labels 100 \
    --hidden 500,500 --latent-dim 100 --aux-dim 100 --lr 3e-4 --epochs "$EPOCHS" --early-stopping 0 \
    --device "$DEVICE" --no-progress --out "$RUNS/sdgm_s$s" training.alpha=50 data.label_seed="$s" \
    > "$OUT/sdgm_s$s.log" 2>&1 &
done
wait
for s in $SEEDS; do
  tail -n 3 "$OUT/sdgm_s$s.log"
  cp "$RUNS/sdgm_s$s/metrics.jsonl" "$OUT/sdgm_s$s.metrics.jsonl" 2>/dev/null || status=1
  python3 -m vaekit eval "$RUNS/sdgm_s$s" > "$OUT/sdgm_s$s.eval.log" 2>&1 || status=1
  grep -i "error" "$OUT/sdgm_s$s.eval.log" | head -n 3
done
exit $status
