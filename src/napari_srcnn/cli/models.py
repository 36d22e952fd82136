"""``napari-srcnn models``: the installed models and their metadata."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the installed models",
                       description="List the shipped (and registered) SRCNN models.")
    p.add_argument("--json", action="store_true", help="print the full metadata as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..engine.weights import list_models

    models = list_models()
    if args.json:
        out = []
        for m in models:
            out.append({"name": m.name, "arch": m.arch.name, "arch_spec": m.arch.to_dict(),
                        "scale": m.scale, "color_mode": m.color_mode,
                        "parameters": m.arch.num_parameters, "description": m.description,
                        "training": m.training, "metrics": m.metrics,
                        "path": str(m.path) if m.path else None})
        print(json.dumps(out, indent=2))
        return 0
    if not models:
        print("no models installed")
        return 0
    print(f"{'name':<22}{'arch':<8}{'scale':>6}  {'colour':<7}{'params':>8}  Set5 PSNR  Set14 PSNR")
    for m in models:
        set5 = m.metrics.get("Set5", {}).get("psnr")
        set14 = m.metrics.get("Set14", {}).get("psnr")
        s5 = f"{set5:.2f}" if set5 else "-"
        s14 = f"{set14:.2f}" if set14 else "-"
        print(f"{m.name:<22}{m.arch.name:<8}{m.scale:>6g}  {m.color_mode:<7}{m.arch.num_parameters:>8}"
              f"  {s5:>9}  {s14:>10}")
    return 0
