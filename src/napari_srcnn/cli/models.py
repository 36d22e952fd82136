"""``napari-srcnn models``: the installed models and their metadata."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the installed models",
        description="List the shipped (and registered) SRCNN models.",
    )
    p.add_argument("--json", action="store_true", help="print the full metadata as JSON")
    p.set_defaults(run=run)


def _psnr(metrics: dict, dataset: str) -> str:
    """``metrics[dataset]["psnr"]`` to 2 decimals, ``-`` when absent or malformed."""
    entry = metrics.get(dataset)
    value = entry.get("psnr") if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{value:.2f}"


def run(args: argparse.Namespace) -> int:
    """Print the installed models (a table, or JSON with ``--json``). Returns 0."""
    from ..engine.weights import list_models

    models = list_models()
    if args.json:
        out = []
        for m in models:
            out.append(
                {
                    "name": m.name,
                    "arch": m.arch.name,
                    "arch_spec": m.arch.to_dict(),
                    "scale": m.scale,
                    "color_mode": m.color_mode,
                    "parameters": m.arch.num_parameters,
                    "description": m.description,
                    "training": m.training,
                    "metrics": m.metrics,
                    "path": str(m.path) if m.path else None,
                }
            )
        print(json.dumps(out, indent=2))
        return 0
    if not models:
        print("no models installed")
        return 0
    print(f"{'name':<22}{'arch':<8}{'scale':>6}  {'colour':<7}{'params':>8}  Set5 PSNR  Set14 PSNR")
    for m in models:
        s5, s14 = _psnr(m.metrics, "Set5"), _psnr(m.metrics, "Set14")
        print(
            f"{m.name:<22}{m.arch.name:<8}{m.scale:>6g}  {m.color_mode:<7}{m.arch.num_parameters:>8}"
            f"  {s5:>9}  {s14:>10}"
        )
    return 0
