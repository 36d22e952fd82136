"""Measure how much bf16 costs each model on the protocol and record it in its weights file.

Usage (from the repository root)::

    python scripts/check_precision.py runs/srcnn-955-y-x3.safetensors [...]
    python scripts/check_precision.py --dry-run src/napari_srcnn/weights/*.safetensors

For every weights file the model is scored on Set5 (``../shared/datasets/eval/Set5``, or
``--images``) at its own factor in fp32 and in bf16 on the CPU, and the result is stored in the
file's ``metrics`` metadata as ``metrics["bf16"]`` (``set5_psnr_delta``, ``ok``, ...; see
``napari_srcnn.engine.precision``): ``precision="auto"`` runs a model in bf16 on CPUs with native
bf16 only when ``ok`` is true, i.e. bf16 lost at most 0.05 dB. The weights themselves are
written back unchanged (float32). ``scripts/ship_models.py`` runs the same check when shipping.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from napari_srcnn.engine.evaluation import check_bf16
from napari_srcnn.engine.precision import BF16_MAX_LOSS_DB
from napari_srcnn.engine.weights import load_model
from napari_srcnn.engine.weights_file import save_weights

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("NAPARI_SRCNN_DATASETS", ROOT.parent / "shared" / "datasets"))


def record(path: Path, images: Path, dry_run: bool = False) -> dict:
    """Measure ``path``'s bf16 check and (unless ``dry_run``) write it into the file."""
    model = load_model(path)
    entry = check_bf16(model, images)
    verdict = "bf16" if entry["ok"] else "fp32"
    print(
        f"{path.name}: Set5 ×{entry['scale']} fp32 {entry['fp32_psnr']:.3f} dB, bf16 "
        f"{entry['bf16_psnr']:.3f} dB ({entry['set5_psnr_delta']:+.3f} dB) -> auto runs "
        f"{verdict} on native-bf16 CPUs"
    )
    if not dry_run:
        metrics = {**model.info.metrics, "bf16": entry}
        save_weights(path, model.net, replace(model.info, metrics=metrics))
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", type=Path)
    parser.add_argument(
        "--images", type=Path, default=DATASETS / "eval" / "Set5", help="the protocol's images"
    )
    parser.add_argument("--dry-run", action="store_true", help="measure, do not write")
    args = parser.parse_args()
    print(f"bf16 check: at most {BF16_MAX_LOSS_DB} dB lost against fp32 on {args.images}")
    for path in args.weights:
        record(path, args.images, dry_run=args.dry_run)


if __name__ == "__main__":
    main()
