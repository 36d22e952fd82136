"""Ship trained models: score them on Set5/Set14 and copy them into the package.

Usage (from the repository root)::

    python scripts/ship_models.py runs/srcnn-955-y-x3.safetensors [...]   # evaluate + ship
    python scripts/ship_models.py --table                                # only docs/results.md

For every weights file given, the script runs the same evaluation as
``napari-srcnn eval ../shared/datasets/eval/SetN --scale S --weights FILE`` on Set5 and
Set14, stores the mean PSNR/SSIM (and bicubic's) in the file's ``metrics`` metadata, and
writes it to ``src/napari_srcnn/weights/<name>.safetensors``. Then it regenerates
``docs/results.md`` from the metadata of every shipped model. Evaluation images are never
used for training or model selection (that uses a held-out split of the training images).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from napari_srcnn.engine.evaluation import evaluate_files, protocol_upscaler, summarize
from napari_srcnn.engine.precision import check_bf16
from napari_srcnn.engine.weights import list_models, load_model, save_weights

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("NAPARI_SRCNN_DATASETS", ROOT.parent / "shared" / "datasets"))
SHIPPED = ROOT / "src" / "napari_srcnn" / "weights"
SETS = ("Set5", "Set14")
TRAIN_SET = "SunHays80 (../shared/datasets/train, 80 JPEG images, 10 % held out)"

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
    """Mean PSNR/SSIM of the model and of bicubic on Set5 and Set14 at its own scale."""
    model = load_model(path)
    scale = int(model.info.scale)
    upscaler = protocol_upscaler(model, scale, device="cpu")
    metrics = dict(model.info.metrics)
    for name in SETS:
        mean = summarize(evaluate_files([DATASETS / "eval" / name], scale, upscaler))
        metrics[name] = {k: round(v, 4) for k, v in mean.items()}
        print(
            f"{model.name} ×{scale} {name}: bicubic {mean['bicubic_psnr']:.2f} / "
            f"{mean['bicubic_ssim']:.4f}, model {mean['psnr']:.2f} / {mean['ssim']:.4f}"
        )
    # What precision="auto" reads on CPUs with native bf16 (napari_srcnn.engine.precision).
    metrics["bf16"] = check_bf16(model, DATASETS / "eval" / "Set5", scale)
    print(
        f"{model.name} ×{scale} bf16 - fp32 on Set5: {metrics['bf16']['set5_psnr_delta']:+.3f} dB "
        f"(auto may use bf16: {metrics['bf16']['ok']})"
    )
    return metrics


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
    if not str(training.get("data", "")).startswith(TRAIN_SET):
        training["data"] = f"{TRAIN_SET}: {training.get('data', '')}"
    if hardware and training.get("hardware") in ("x86_64", "aarch64", "", None):
        training["hardware"] = hardware
    info = replace(model.info, name=name, metrics=metrics, training=training)
    return save_weights(SHIPPED / f"{name}.safetensors", model.net, info)


def results_table() -> str:
    """docs/results.md from the shipped models' metadata."""
    lines = [
        "# Results",
        "",
        "Y-channel PSNR (dB) / SSIM of the shipped models on Set5 and Set14, by the protocol",
        "of the SRCNN paper (MATLAB bicubic degradation, BT.601 Y, `scale` pixels shaved; see",
        '[the method](method.md)). Bicubic and ours are measured by this project; "paper" is',
        "Dong et al., TPAMI 2016 (9-5-5; for 9-1-5 ×3 the paper's 91-image model, Set5 only).",
        "Set5/Set14 were never used for training or model selection: models were selected on a",
        "held-out 10 % of the 80 Sun–Hays training images.",
        "",
        "| model | set | bicubic | ours | paper | ours − paper |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    commands = []
    for m in list_models():
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
                f"**{got['psnr']:.2f}** / {got['ssim']:.4f} | {paper_txt} | {diff} |"
            )
        t = m.training
        run_steps = (t.get("config") or {}).get("steps", t.get("steps", "?"))
        commands.append(
            f"- `{m.name}`: trained with `scripts/train_shipped.sh {m.name}` "
            f"({t.get('recipe', '?')} recipe, {run_steps} steps (the written weights are those "
            f"of step {t.get('steps', '?')}, the best held-out PSNR) of batch "
            f"{t.get('batch_size', '?')} × {t.get('patch_size', '?')}² sub-images, "
            f"{t.get('wall_seconds', 0) / 60:.0f} min on {t.get('hardware', '?')}"
            f"{', fine-tuned from ' + str(t['init_from']) if t.get('init_from') else ', from scratch'}); "
            f"reproduce a row with `napari-srcnn eval ../shared/datasets/eval/Set5 --scale {scale} "
            f"--model {m.name}` (and `--bicubic` for the baseline)."
        )
    lines += ["", "## How each model was made and how to reproduce the rows", "", *commands, ""]
    lines += [
        "The ×3 models are trained from scratch with the `adam` recipe's identity start (the",
        "untrained network equals bicubic; see [Training](training.md#recipes)); the ×2 and",
        "×4 models are fine-tuned from the ×3 model of their colour mode.",
        "RGB models (`rgb`) take and return R, G and B; like every row they are scored on the",
        "Y of their 8-bit result (the paper's colour experiment).",
        "",
        "Training wall times are of CPU runs sharing a 2-core machine (one thread per run, two",
        "runs at a time); no GPU was available for these runs.",
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
