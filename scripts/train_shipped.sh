#!/usr/bin/env bash
# Train the models shipped in src/napari_srcnn/weights/ with our own `napari-srcnn train`.
# Usage: scripts/train_shipped.sh MODEL [extra args]   (run from the repository root)
#
# Photo models: T91 + BSD200 + BSDS500-test (491 lossless/q95 images in ../shared/datasets/train;
# never Set5/Set14), 10 % held out for model selection. Each continues its earlier SunHays80
# model with the full-range recipe (the ×3 Y model for 20,000 steps, the others for 3-5,000): intensity augmentation on half the sub-images (random
# contrast, offset and sign), bf16 autocast where the CPU has native bf16 with an fp32 tail.
# Microscopy models (colour mode gray, applied per channel): six sources of
# ../shared/datasets/train/microscopy, validated (and selected) on two whole sources held out,
# haase and neubias; LR made five ways per plane (--degradation mixed: bicubic, area binning,
# blurred bicubic, oversampled, dim) and stored on the data's own levels (--lr-levels).
# Outputs and checkpoints go to runs/; an interrupted run continues with the same command plus
# `--resume runs/MODEL.ckpt.safetensors`. OMP_NUM_THREADS=1 lets two runs share 2 cores.
set -euo pipefail
TRAIN=${NAPARI_SRCNN_DATASETS:-../shared/datasets}/train
PHOTO=("$TRAIN/T91" "$TRAIN/BSD200" "$TRAIN/BSDS500-test")
MICRO=$TRAIN/microscopy
MICRO_TRAIN=("$MICRO/bmz_samples" "$MICRO/cellprofiler" "$MICRO/deepimagej" "$MICRO/epfl_em" "$MICRO/isbi_em" "$MICRO/stardist")
MICRO_VAL=("$MICRO/haase" "$MICRO/neubias")
OUT=runs
mkdir -p "$OUT"
model=$1; shift
shipped=src/napari_srcnn/weights
common=(--patch 48 --batch 32 --val-every 1000 --val-fraction 0.1 --intensity-augment 0.5 --seed 0)
y=(--channels y "${common[@]}")
rgb=(--channels rgb "${common[@]}")
micro=(--channels per-channel --degradation mixed --patch 48 --batch 32 --val-every 2000 --intensity-augment 0.5 --seed 0 --val-data "${MICRO_VAL[@]}")
# A long continuation of the shipped model for factor $1 and colour mode $2 on the fixed photo
# split plus its scaled copies (docs/training.md).
long_photo() {
  local scale=$1 channels=$2; shift 2
  local SP=runs/photo-split
  [ -d "$SP/val" ] || scripts/photo_split.sh
  [ -d "$SP/train-scaled" ] || python scripts/photo_scaled.py
  napari-srcnn train "$SP"/train/* "$SP"/train-scaled/* --val-data "$SP/val" --scale "$scale" --channels "$channels" \
    --from "$shipped/$model.safetensors" --steps 50000 --lr 2e-4 --ema 0.999 --patch 48 --batch 32 \
    --intensity-augment 0.5 --val-every 5000 --checkpoint-every 2500 --seed 0 -o "$OUT/$model.safetensors" "$@"
}
case "$model" in
  srcnn-955-y-x3-stages) napari-srcnn train "${PHOTO[@]}" --scale 3 --from "$shipped/srcnn-955-y-x3.safetensors" --steps 20000 --lr 3e-4 "${y[@]}" -o "$OUT/$model.safetensors" "$@" ;;
  # The others continue their own earlier model for a shorter run with the new recipe; the RGB
  # models in three stages, the last two with more whole-range content (the first left them
  # 0.5-0.6/255 off on flat near-black images), the last in fp32 (its output, $model-c, ships as $model).
  srcnn-915-y-x3-stages) napari-srcnn train "${PHOTO[@]}" --scale 3 --from "$shipped/srcnn-915-y-x3.safetensors" --steps 4000 --lr 3e-4 "${y[@]}" -o "$OUT/$model.safetensors" "$@" ;;
  # Y x2 and x4: the model of the previous release (this script's earlier
  # 5,000-step case on "${PHOTO[@]}", 10 % held out) continued for 50,000 steps on the fixed split
  # plus its scaled copies, with EMA 0.999 (long_photo, above).
  srcnn-955-y-x2) long_photo 2 y "$@" ;;
  srcnn-955-y-x4) long_photo 4 y "$@" ;;
  # RGB, 9-1-5 and Y ×3: the same long continuation of the model the stages below made (shipped
  # before it; run `scripts/train_shipped.sh srcnn-955-rgb-x2-stages` and so on to remake them).
  # RGB x2, Y x4 and RGB x3 then had a second, 40,000-step run at lr 1e-4 from that result (Set5
  # 36.63 -> 36.71, 30.38 -> 30.42, 32.61 -> 32.69 dB), e.g. for RGB x2, with the first run's result installed:
  #   scripts/train_shipped.sh srcnn-955-rgb-x2 --from src/napari_srcnn/weights/srcnn-955-rgb-x2.safetensors \
  #     --steps 40000 --lr 1e-4 -o runs/r2/srcnn-955-rgb-x2.safetensors
  # (The same run for RGB x4 reached 30.37 dB but left a flat near-black 12-bit image 0.53/255
  # off, above the 0.5/255 bound of tests/test_shipped_models.py: not shipped. Run again with the
  # fine-tune flat guard, every validation after the fp32 tail was 0.53/255 off: it kept its start.)
  srcnn-955-rgb-x[234]|srcnn-915-y-x3|srcnn-955-y-x3) long_photo "${model: -1}" "$(cut -d- -f3 <<<"$model")" "$@" ;;
  srcnn-955-rgb-x3-stages)
    napari-srcnn train "${PHOTO[@]}" --scale 3 --from "$shipped/srcnn-955-rgb-x3.safetensors" --steps 3000 --lr 2e-4 "${rgb[@]}" -o "$OUT/$model.safetensors" "$@"
    napari-srcnn train "${PHOTO[@]}" --scale 3 --from "$OUT/$model.safetensors" --steps 3000 --lr 1e-4 "${rgb[@]}" --intensity-augment 0.7 -o "$OUT/$model-b.safetensors" "$@"
    napari-srcnn train "${PHOTO[@]}" --scale 3 --from "$OUT/$model-b.safetensors" --steps 2000 --lr 5e-5 "${rgb[@]}" --intensity-augment 0.9 --fp32 -o "$OUT/$model-c.safetensors" "$@" ;;
  srcnn-955-rgb-x2-stages)
    napari-srcnn train "${PHOTO[@]}" --scale 2 --from "$shipped/srcnn-955-rgb-x2.safetensors" --steps 3000 --lr 2e-4 "${rgb[@]}" -o "$OUT/$model.safetensors" "$@"
    napari-srcnn train "${PHOTO[@]}" --scale 2 --from "$OUT/$model.safetensors" --steps 3000 --lr 1e-4 "${rgb[@]}" --intensity-augment 0.7 -o "$OUT/$model-b.safetensors" "$@"
    napari-srcnn train "${PHOTO[@]}" --scale 2 --from "$OUT/$model-b.safetensors" --steps 2000 --lr 5e-5 "${rgb[@]}" --intensity-augment 0.9 --fp32 -o "$OUT/$model-c.safetensors" "$@" ;;
  srcnn-955-rgb-x4-stages)
    napari-srcnn train "${PHOTO[@]}" --scale 4 --from "$shipped/srcnn-955-rgb-x4.safetensors" --steps 3000 --lr 2e-4 "${rgb[@]}" -o "$OUT/$model.safetensors" "$@"
    napari-srcnn train "${PHOTO[@]}" --scale 4 --from "$OUT/$model.safetensors" --steps 3000 --lr 1e-4 "${rgb[@]}" --intensity-augment 0.7 -o "$OUT/$model-b.safetensors" "$@"
    napari-srcnn train "${PHOTO[@]}" --scale 4 --from "$OUT/$model-b.safetensors" --steps 2000 --lr 5e-5 "${rgb[@]}" --intensity-augment 0.9 --fp32 -o "$OUT/$model-c.safetensors" "$@" ;;
  # Microscopy: ×2 from the shipped photo ×2 (12,000 steps; this run predates the oversampled
  # partner of --degradation mixed, commit 6b0f9b7), then 6,000 more with it (seed 1); ×3 and ×4
  # continue that ×2 model (-b). Then each continues for the LR stored on the data's own levels
  # (--lr-levels, default for per-channel data) with the dim partner of mixed: ×2 for 4,000
  # steps, then 3,000 more with the oversampled blur cycled over 0.4/0.6/0.8 × the factor;
  # ×3 and ×4 for 3,000 steps with both. Each stage is selected on haase + neubias.
  srcnn-955-micro-x2)
    napari-srcnn train "${MICRO_TRAIN[@]}" --scale 2 --from "$shipped/srcnn-955-y-x2.safetensors" --steps 12000 --lr 3e-4 "${micro[@]}" -o "$OUT/$model-a.safetensors" "$@"
    napari-srcnn train "${MICRO_TRAIN[@]}" --scale 2 --from "$OUT/$model-a.safetensors" --steps 6000 --lr 2e-4 "${micro[@]}" --seed 1 -o "$OUT/$model-b.safetensors" "$@"
    napari-srcnn train "${MICRO_TRAIN[@]}" --scale 2 --from "$OUT/$model-b.safetensors" --steps 4000 --lr 1e-4 --ema 0.999 "${micro[@]}" --val-every 1000 --seed 2 -o "$OUT/$model-c.safetensors" "$@"
    napari-srcnn train "${MICRO_TRAIN[@]}" --scale 2 --from "$OUT/$model-c.safetensors" --steps 3000 --lr 1e-4 --ema 0.999 "${micro[@]}" --val-every 1000 --seed 3 -o "$OUT/$model.safetensors" "$@" ;;
  srcnn-955-micro-x3|srcnn-955-micro-x4)
    s=${model: -1}
    napari-srcnn train "${MICRO_TRAIN[@]}" --scale "$s" --from "$OUT/srcnn-955-micro-x2-b.safetensors" --steps 4000 --lr 2e-4 "${micro[@]}" -o "$OUT/$model-b.safetensors" "$@"
    napari-srcnn train "${MICRO_TRAIN[@]}" --scale "$s" --from "$OUT/$model-b.safetensors" --steps 3000 --lr 1e-4 --ema 0.999 "${micro[@]}" --val-every 1000 --seed 3 -o "$OUT/$model.safetensors" "$@" ;;
  # The from-scratch Y x3 run of the recipe study (docs/training.md), 300,000 steps over several
  # sittings: fixed held-out split (scripts/photo_split.sh) plus scaled copies (scripts/photo_scaled.py),
  # EMA 0.999. Ended at step 132,500: the held-out curve had flattened at 27.69 dB (since about
  # 100,000), below the shipped continuation model (27.75 dB), so no x2/x4 runs were started from it.
  scratch-y-x3)
    SP=runs/photo-split
    [ -d "$SP/val" ] || scripts/photo_split.sh
    [ -d "$SP/train-scaled" ] || python scripts/photo_scaled.py
    mkdir -p runs/s20
    napari-srcnn train "$SP"/train/* "$SP"/train-scaled/* --val-data "$SP/val" --scale 3 --channels y --scratch --arch 9-5-5 \
      --steps 300000 --lr 1e-3 --patch 48 --batch 32 --ema 0.999 --intensity-augment 0.5 --val-every 5000 --checkpoint-every 2500 \
      --seed 0 -o runs/s20/scratch-y-x3.safetensors "$@" ;;
  *) echo "unknown model $model" >&2; exit 2 ;;
esac
