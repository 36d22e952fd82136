"""Ship trained models: score them on Set5/Set14 and copy them into the package.

Usage (from the repository root)::

    python scripts/ship_models.py runs/srcnn-955-y-x3.safetensors [...]   # evaluate + ship
    python scripts/ship_models.py --table                                # only docs/results.md

For every photo model given, the script runs the same evaluation as
``napari-srcnn eval ../shared/datasets/eval/SetN --scale S --weights FILE [--ensemble]`` on Set5
and Set14 (plain and self-ensemble, "SRCNN+"), the bf16 check, and the flat-image check; for every
microscopy model (colour mode gray) it scores the held-out microscopy sources at its factor, shrunk
by bicubic and by area binning, next to bicubic and the photo model. It stores the figures in the
file's ``metrics`` metadata and writes it to ``src/napari_srcnn/weights/<name>.safetensors``. Then
it regenerates ``docs/results.md`` from the metadata of every shipped model. Evaluation images are
never used for training or model selection (that uses held-out training images or sources).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

from microscopy_eval import HELD_OUT, per_source, score_sources

from napari_srcnn.engine.evaluation import (
    FLAT_MAX_ERROR_255,
    check_bf16,
    check_flat,
    evaluate_files,
    protocol_upscaler,
    summarize,
)
from napari_srcnn.engine.weights import list_models, load_model
from napari_srcnn.engine.weights_file import save_weights

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("NAPARI_SRCNN_DATASETS", ROOT.parent / "shared" / "datasets"))
SHIPPED = ROOT / "src" / "napari_srcnn" / "weights"
SETS = ("Set5", "Set14")
TRAIN_SETS = {
    "photo": "T91 + BSD200 + BSDS500-test (../shared/datasets/train, 491 images, 10 % held out)",
    "microscopy": "microscopy (../shared/datasets/train/microscopy: bmz_samples, cellprofiler, "
    "deepimagej, epfl_em, isbi_em, stardist; validated on the held-out sources haase, neubias)",
}
FINE_TUNE = ROOT / "docs" / "fine_tune.json"  # scripts/fine_tune_stacks.py writes it

# Published numbers (shared/datasets/README.md): bicubic and SRCNN 9-5-5 (PSNR, SSIM).
PAPER_955 = {
    ("Set5", 2): (36.66, 0.9542),
    ("Set5", 3): (32.75, 0.9090),
    ("Set5", 4): (30.48, 0.8628),
    ("Set14", 2): (32.42, 0.9063),
    ("Set14", 3): (29.28, 0.8209),
    ("Set14", 4): (27.49, 0.7503),
}
PAPER_915_SET5_X3 = 32.39  # 9-1-5 trained on 91 images


def evaluate(path: Path) -> dict:
    """The metrics of a weights file: see the module docstring."""
    model = load_model(path)
    scale = int(model.info.scale)
    metrics = dict(model.info.metrics)
    flat = check_flat(model)
    metrics["flat_max_error_255"] = flat["max_error_255"]
    print(f"{model.name}: flat images within {flat['max_error_255']:.2f}/255 (worst: {flat})")
    if not flat["ok"]:
        raise SystemExit(f"{model.name} moves flat images by more than {FLAT_MAX_ERROR_255}/255")
    if model.info.color_mode == "per-channel":
        return {**metrics, "microscopy": microscopy(path, scale)}
    for ensemble in (False, True):
        upscaler = protocol_upscaler(model, scale, device="cpu", ensemble=ensemble)
        for name in SETS:
            mean = summarize(evaluate_files([DATASETS / "eval" / name], scale, upscaler))
            key = name + ("+" if ensemble else "")
            metrics[key] = {k: round(v, 4) for k, v in mean.items()}
            print(
                f"{model.name} ×{scale} {key}: bicubic {mean['bicubic_psnr']:.2f} / "
                f"{mean['bicubic_ssim']:.4f}, model {mean['psnr']:.2f} / {mean['ssim']:.4f}"
            )
    # What precision="auto" reads on CPUs with native bf16 (napari_srcnn.engine.precision).
    metrics["bf16"] = check_bf16(model, DATASETS / "eval" / "Set5", scale)
    print(
        f"{model.name} ×{scale} bf16 - fp32 on Set5: {metrics['bf16']['set5_psnr_delta']:+.3f} dB "
        f"(auto may use bf16: {metrics['bf16']['ok']})"
    )
    return metrics


def microscopy(path: Path, scale: int) -> dict:
    """Per held-out source and degradation: bicubic, the photo model and this model."""
    from napari_srcnn.engine.weights import default_model_name

    photo = default_model_name(float(scale), "y")
    out: dict = {"sources": list(HELD_OUT), "photo_model": photo}
    for degradation in ("bicubic", "area"):
        mine = per_source(score_sources(str(path), scale, degradation, quiet=True))
        plain = per_source(score_sources(str(path), scale, degradation, quiet=True, strength=1.0))
        theirs = per_source(score_sources(photo, scale, degradation, quiet=True))
        for source in mine:
            mine[source]["photo_psnr"] = theirs[source]["psnr"]
            mine[source]["photo_gain"] = theirs[source]["gain"]
            mine[source]["plain_psnr"] = plain[source]["psnr"]
            mine[source]["plain_min_gain"] = plain[source]["min_gain"]
            print(
                f"×{scale} {degradation} {source}: bicubic {mine[source]['bicubic_psnr']:.2f}, "
                f"photo {theirs[source]['psnr']:.2f}, microscopy {mine[source]['psnr']:.2f} dB "
                f"(gain {mine[source]['gain']:+.2f}, min {mine[source]['min_gain']:+.2f})"
            )
        out[degradation] = mine
    return out


def ship(path: Path, measure: bool = True, hardware: str | None = None) -> Path:
    """Copy ``path`` into the package with measured metrics and a named training set.

    ``measure=False`` keeps the metrics already in the file (re-labelling only).
    ``hardware`` replaces a bare architecture name (``x86_64``: what trainers before 0.2
    recorded) with the machine the run really used.
    """
    model = load_model(path)
    metrics = evaluate(path) if measure else dict(model.info.metrics)
    name = path.name.removesuffix(".safetensors")
    training = dict(model.info.training)
    train_set = TRAIN_SETS["microscopy" if model.info.color_mode == "per-channel" else "photo"]
    if not str(training.get("data", "")).startswith(train_set):
        training["data"] = f"{train_set}: {training.get('data', '')}"
    if hardware and training.get("hardware") in ("x86_64", "aarch64", "", None):
        training["hardware"] = hardware
    info = replace(model.info, name=name, metrics=metrics, training=training)
    return save_weights(SHIPPED / f"{name}.safetensors", model.net, info)


def _cell(got: dict | None) -> str:
    return "–" if not got else f"{got['psnr']:.2f} / {got['ssim']:.4f}"


def results_table() -> str:
    """docs/results.md from the shipped models' metadata."""
    models = list_models()
    photo = [m for m in models if m.color_mode != "per-channel" and m.metrics.get("Set5")]
    micro = [m for m in models if m.color_mode == "per-channel" and m.metrics.get("microscopy")]
    lines = [
        "# Results",
        "",
        "## Photographs: Set5 and Set14",
        "",
        "Y-channel PSNR (dB) / SSIM of the shipped photo models on Set5 and Set14, by the protocol",
        "of the SRCNN paper (MATLAB bicubic degradation, BT.601 Y, `scale` pixels shaved; see",
        '[the method](method.md)). Bicubic and ours are measured by this project; "paper" is',
        "Dong et al., TPAMI 2016 (9-5-5; for 9-1-5 ×3 the paper's 91-image model, Set5 only).",
        '"ours+" is the self-ensemble (the mean of the 8 flips and rotations, `--ensemble`),',
        "reported apart and never mixed into the plain model's numbers. Set5/Set14 were never used",
        "for training or model selection: models were selected on a held-out 10 % of the training",
        "images.",
        "",
        "| model | set | bicubic | ours | ours+ (SRCNN+) | paper | ours − paper |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    commands = []
    for m in photo:
        scale = int(m.scale)
        for name in SETS:
            got = m.metrics.get(name)
            if not got:
                continue
            paper = PAPER_955.get((name, scale)) if m.arch.name == "9-5-5" else None
            if m.arch.name == "9-1-5" and scale == 3 and name == "Set5":
                paper = (PAPER_915_SET5_X3, None)
            paper_txt = (
                "–"
                if paper is None
                else (f"{paper[0]:.2f}" + (f" / {paper[1]:.4f}" if paper[1] else ""))
            )
            diff = "–" if paper is None else f"{got['psnr'] - paper[0]:+.2f} dB"
            lines.append(
                f"| `{m.name}` ({m.arch.name}, ×{scale}, {m.color_mode}) | {name} | "
                f"{got['bicubic_psnr']:.2f} / {got['bicubic_ssim']:.4f} | "
                f"**{got['psnr']:.2f}** / {got['ssim']:.4f} | {_cell(m.metrics.get(name + '+'))} | "
                f"{paper_txt} | {diff} |"
            )
    for m in photo + micro:
        t = m.training
        run_steps = (t.get("config") or {}).get("steps", t.get("steps", "?"))
        scale = int(m.scale)
        check = (
            f"`napari-srcnn eval ../shared/datasets/eval/Set5 --scale {scale} --model {m.name}` "
            "(`--ensemble` for ours+, `--bicubic` for the baseline)"
            if m.color_mode != "per-channel"
            else f"`python scripts/microscopy_eval.py --scale {scale} --model {m.name}` "
            "(`--degradation area` for binned input)"
        )
        commands.append(
            f"- `{m.name}`: `scripts/train_shipped.sh {m.name}` ({t.get('recipe', '?')} recipe, "
            f"{run_steps} steps (the written weights are those of step {t.get('steps', '?')}, the "
            f"best held-out PSNR) of batch {t.get('batch_size', '?')} × "
            f"{t.get('patch_size', '?')}² sub-images, {t.get('precision', 'fp32')}, "
            f"{t.get('wall_seconds', 0) / 60:.0f} min on {t.get('hardware', '?')}"
            f"{', continued from ' + str(t['init_from']) if t.get('init_from') else ', from scratch'}); "
            f"flat images within {m.metrics.get('flat_max_error_255', float('nan')):.2f}/255; "
            f"reproduce with {check}."
        )
    if micro:
        lines += [
            "",
            "## Microscopy: held-out sources",
            "",
            "PSNR (dB) over each channel's own data range, every plane of every image of two whole",
            "sources the microscopy models never saw in training (`haase`: confocal and widefield",
            "fluorescence, 8/16-bit, 1–3 channels; `neubias`: widefield/confocal fluorescence and",
            "EM, 8/12/16-bit, 1–2 channels, z-stacks), shrunk by the factor and upscaled with the",
            "defaults of `napari-srcnn upscale` (intensities by the data's own range, the",
            "strength of the correction measured on each image, `--strength auto`; the mean",
            'strength is given). "bicubic-shrunk" is',
            'MATLAB\'s bicubic (the protocol); "area-binned" averages `scale × scale` pixels (a',
            'camera with bigger pixels). Means over a source\'s images; "worst" is the smallest',
            "gain over bicubic of any image. Scored by `napari_srcnn.engine.scoring` (also",
            "`napari-srcnn eval STACK.tif --scale S`).",
            "",
            "| factor | input | source | images | bicubic | photo model | microscopy model, "
            "strength 1 (worst gain) | microscopy model | strength | gain (worst) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for m in sorted(micro, key=lambda m: m.scale):
            report = m.metrics["microscopy"]
            for degradation, label in (("bicubic", "bicubic-shrunk"), ("area", "area-binned")):
                for source, r in report.get(degradation, {}).items():
                    lines.append(
                        f"| ×{int(m.scale)} | {label} | {source} | {r['images']} | "
                        f"{r['bicubic_psnr']:.2f} | {r['photo_psnr']:.2f} | "
                        f"{r['plain_psnr']:.2f} ({r['plain_min_gain']:+.2f}) | "
                        f"**{r['psnr']:.2f}** | {r['strength']:.2f} | "
                        f"{r['gain']:+.2f} ({r['min_gain']:+.2f}) |"
                    )
        lines += [
            "",
            f"The photo model column is `{micro[0].metrics['microscopy']['photo_model']}` (and its",
            "×3/×4 siblings) run the same way, with the same intensity map and measured strength.",
        ]
    if FINE_TUNE.exists():
        runs = json.loads(FINE_TUNE.read_text(encoding="utf-8"))
        lines += [
            "",
            "## Fine-tuning on a user's stack",
            "",
            "`napari-srcnn train STACK.tif --scale 2` with its defaults (fine-tuning the installed",
            "microscopy model, planes held out by the default 10 % split, at least one), scored on",
            "the held-out planes (bicubic-shrunk, PSNR on intensities mapped to [0, 1] by the",
            "stack's range). Both stacks are from the held-out sources. Made by",
            "`scripts/fine_tune_stacks.py`.",
            "",
            "| stack | planes (train / held out) | bicubic | microscopy model | fine-tuned | gain |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in runs:
            lines.append(
                f"| `{r['stack']}` | {r['train']} / {r['val']} | {r['bicubic']:.2f} | "
                f"{r['start']:.2f} | **{r['tuned']:.2f}** | {r['tuned'] - r['start']:+.2f} dB |"
            )
    lines += ["", "## How each model was made and how to reproduce the rows", "", *commands, ""]
    lines += [
        "The photo models continue the earlier SunHays80 models on T91 + BSD200 + BSDS500-test",
        "with the full-range recipe (intensity augmentation on half of the sub-images; see",
        "[Training](training.md)); the microscopy ×2 model continues the photo ×2 model on six",
        "microscopy sources with mixed degradations (bicubic, area binning, mild blur,",
        "oversampled, dim), the LR stored on the data's own levels, and the ×3/×4 microscopy",
        "models continue it.",
        "RGB models (`rgb`) take and return R, G and B; like every row they are scored on the",
        "Y of their 8-bit result (the paper's colour experiment).",
        "",
        "Training wall times are of CPU runs sharing a 2-core machine (one thread per run, two",
        "runs at a time, other work alongside); no GPU was available for these runs.",
        "",
        "![bicubic vs SRCNN](images/comparison.png)",
        "",
        "The figure (made by `python scripts/make_figure.py`) shows the same crop of a Set14",
        "image up-sampled ×3 by bicubic and by the shipped 9-5-5 Y model.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="*", type=Path)
    parser.add_argument("--table", action="store_true", help="only regenerate docs/results.md")
    parser.add_argument(
        "--hardware",
        help="the machine of runs whose metadata names only the architecture "
        '(e.g. "AMD EPYC, 2 CPUs, 1 torch thread")',
    )
    parser.add_argument(
        "--keep-metrics",
        action="store_true",
        help="do not re-evaluate: keep the metrics stored in the files",
    )
    args = parser.parse_args()
    if not args.table:
        for path in args.weights:
            print("shipped", ship(path, measure=not args.keep_metrics, hardware=args.hardware))
    (ROOT / "docs" / "results.md").write_text(results_table(), encoding="utf-8")
    print("wrote docs/results.md")


if __name__ == "__main__":
    main()
