#!/usr/bin/env bash
# Train the models shipped in src/napari_srcnn/weights/ with our own `napari-srcnn train`.
# Usage: scripts/train_shipped.sh MODEL [extra args]   (run from the repository root)
# The data are the 80 Sun-Hays training images in ../shared/datasets/train (never Set5/Set14);
# 10 % of them are held out for model selection. Outputs and checkpoints go to runs/.
# Each run uses one thread (OMP_NUM_THREADS=1) so two lanes share 2 cores without
# oversubscription. Interrupted runs continue with the same command plus `--resume runs/MODEL.ckpt.safetensors`.
set -euo pipefail
DATA=${NAPARI_SRCNN_DATASETS:-../shared/datasets}/train/SunHays80
OUT=runs
mkdir -p "$OUT"
model=$1; shift
common=(--channels y --patch 48 --batch 32 --val-every 1000 --val-fraction 0.1 --seed 0)
common_rgb=(--channels rgb "${common[@]:2}")
case "$model" in
  # From scratch, Adam's default start: the identity init (the net equals bicubic at step 0).
  srcnn-955-y-x3) napari-srcnn train "$DATA" --scale 3 --scratch --arch 9-5-5 --steps 14000 --lr 1e-3 "${common[@]}" -o "$OUT/$model.safetensors" "$@" ;;
  srcnn-915-y-x3) napari-srcnn train "$DATA" --scale 3 --scratch --arch 9-1-5 --steps 30000 --lr 1e-3 "${common[@]}" -o "$OUT/$model.safetensors" "$@" ;;
  srcnn-955-rgb-x3) napari-srcnn train "$DATA" --scale 3 --scratch --arch 9-5-5 --steps 7000 --lr 1e-3 "${common_rgb[@]}" -o "$OUT/$model.safetensors" "$@" ;;
  # ×2 and ×4 fine-tune the ×3 model of their colour mode: across factors this converges
  # far faster than a new start.
  srcnn-955-y-x2) napari-srcnn train "$DATA" --scale 2 --from "$OUT/srcnn-955-y-x3.safetensors" --steps 6000 --lr 2e-4 "${common[@]}" -o "$OUT/$model.safetensors" "$@" ;;
  srcnn-955-y-x4) napari-srcnn train "$DATA" --scale 4 --from "$OUT/srcnn-955-y-x3.safetensors" --steps 6000 --lr 2e-4 "${common[@]}" -o "$OUT/$model.safetensors" "$@" ;;
  srcnn-955-rgb-x2) napari-srcnn train "$DATA" --scale 2 --from "$OUT/srcnn-955-rgb-x3.safetensors" --steps 3000 --lr 2e-4 "${common_rgb[@]}" -o "$OUT/$model.safetensors" "$@" ;;
  srcnn-955-rgb-x4) napari-srcnn train "$DATA" --scale 4 --from "$OUT/srcnn-955-rgb-x3.safetensors" --steps 3000 --lr 2e-4 "${common_rgb[@]}" -o "$OUT/$model.safetensors" "$@" ;;
  *) echo "unknown model $model" >&2; exit 2 ;;
esac
