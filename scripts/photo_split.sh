#!/usr/bin/env bash
# A fixed held-out split of the photo training data, shared by the recipe study and the shipped
# photo models: every 10th image (sorted by name) of T91, BSD200 and BSDS500-test validates, the
# rest trains. Made of symbolic links under runs/photo-split/{train,val}/SOURCE (nothing copied).
# Usage: scripts/photo_split.sh   (from the repository root; prints the two folders)
set -euo pipefail
TRAIN=${NAPARI_SRCNN_DATASETS:-../shared/datasets}/train
SPLIT=runs/photo-split
for src in T91 BSD200 BSDS500-test; do
  mkdir -p "$SPLIT/train/$src" "$SPLIT/val/$src"
  i=0
  while IFS= read -r name; do
    part=train; (( i % 10 == 9 )) && part=val
    ln -sfn "$(realpath "$TRAIN/$src/$name")" "$SPLIT/$part/$src/$name"
    i=$((i + 1))
  done < <(ls "$TRAIN/$src" | sort)
done
echo "$SPLIT/train $SPLIT/val"
