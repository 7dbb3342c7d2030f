#!/usr/bin/env bash
# One prepared run on a borrowed GPU machine (the `device` tool; issues 12 and 13): four trainings
# side by side on the one GPU for TRAIN_S seconds each, stopped with SIGTERM (the loop finishes the
# step and writes a checkpoint), exported, timed at 512x512 and 1080p, packed into $OUT.
#
# Prepare here: make train-content; python scripts/gpu/prepare_carry.py   (builds .gpu/, ~21 MB)
# Run there:    bash scripts/gpu/session.sh        (carry .gpu; PYTHONPATH=src, nothing installed)
# Try it here:  DEVICE=cpu TRAIN_S=90 EXTRA="--set size=64 --set batch_size=2" PY=.venv/bin/python \
#                 OUT=/tmp/gpu_out bash scripts/gpu/session.sh
set -u
DEVICE=${DEVICE:-cuda}
TRAIN_S=${TRAIN_S:-330}
OUT=${OUT:-out/gpu}
PY=${PY:-python3}
RUNS=${RUNS:-fast_v6 fast_v5_gpu default_v5 default_v5_open}
EXTRA=${EXTRA:-}  # more train options, e.g. "--set size=64" for a try on a CPU
export PYTHONPATH=src PYTHONUNBUFFERED=1 SEMSTYLE_HOME=${SEMSTYLE_HOME:-/tmp/semstyle_home}
mkdir -p "$OUT" runs models_gpu
exec > >(tee "$OUT/session.log") 2>&1
date -u; nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null; $PY -c 'import torch; print(torch.__version__)'

VGG=/tmp/vgg16_relu4_1_expanded.safetensors
$PY scripts/gpu/expand_vgg.py .gpu/vgg16_to_relu4_1.fp16.safetensors $VGG || exit 1

pids=()
for run in $RUNS; do
  timeout -k 60 -s TERM "$TRAIN_S" $PY -m semstyle.cli train --config "configs/$run.toml" --no-progress \
    --content .gpu/content --styles .gpu/styles --device "$DEVICE" --encoder-weights "$VGG" $EXTRA \
    > "runs/$run.log" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"  # not a bare wait: that would wait for the tee above too, which ends only with this script
date -u
for run in $RUNS; do
  tail -n 3 "runs/$run.log"; tail -n 1 "runs/$run/log.jsonl" 2>/dev/null
  $PY -m semstyle.cli export "runs/$run" -o "models_gpu/$run" --half || continue
  cp "runs/$run/log.jsonl" "runs/$run.log" "models_gpu/$run/"
  last=$(ls runs/$run/samples/*.png 2>/dev/null | tail -n 1)
  [ -n "$last" ] && cp "$last" "models_gpu/$run/last_sample.png"
  tar -cf "$OUT/$run.tar" -C models_gpu "$run"
done
date -u
models="default=src/semstyle/assets/default fast=src/semstyle/assets/fast"
for run in $RUNS; do [ -d "models_gpu/$run" ] && models="$models $run=models_gpu/$run"; done
$PY scripts/gpu/frame_rates.py --device "$DEVICE" --encoder-weights "$VGG" --out "$OUT/frame_rates.json" $models
date -u
