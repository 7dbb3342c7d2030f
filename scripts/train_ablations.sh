#!/bin/bash
# Issue 12's injection-depth ablation, one run after the other (they share 2 cores), each resumed
# from its last checkpoint when this is run again. Usage: scripts/train_ablations.sh

cd "$(dirname "$0")/.."
for layer in relu3_1 relu4_1; do
  config=configs/ablation_${layer}.toml run=runs/ablation_${layer}
  resume=""; ls "$run"/checkpoints/* >/dev/null 2>&1 && resume="--resume"
  nice -n 5 .venv/bin/semstyle train --config "$config" $resume --no-progress > "$run.log" 2>&1
done
