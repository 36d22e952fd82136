"""``napari-srcnn samples``: list the bundled sample images, or copy them to a folder."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "samples",
        help="list or copy the bundled sample images",
        description="Bundled low-resolution (×1/3) images with their high-resolution originals.",
    )
    p.add_argument("--copy", metavar="DIR", default=None, help="copy the sample files into DIR")
    p.add_argument("names", nargs="*", metavar="NAME", help="samples to copy (default: all)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..samples import SAMPLES, copy_samples, sample_path

    if args.copy is None:
        for key, sample in SAMPLES.items():
            print(
                f"{key:<8}{sample.title}: {sample_path(key + '-lr').name}, {sample_path(key + '-hr').name}"
            )
        return 0
    for path in copy_samples(args.copy, args.names or None):
        print(path)
    return 0
