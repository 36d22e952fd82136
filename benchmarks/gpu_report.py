"""Write ``report.md`` for ``benchmarks/gpu_check.sh`` from what its stages left in a folder.

    python benchmarks/gpu_report.py OUTDIR

Reads ``stages.tsv`` (stage, exit code, seconds), ``machine.txt``, the JSON results of the
benchmark (``cpu.json``, ``gpu.json``) and of the training probe (``probe.json``) and the text
logs next to them; whatever a stage did not write is reported as missing, never an error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _num(value: Any, fmt: str = ".1f") -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else "–"


def _inference_rows(res: dict[str, Any]) -> list[str]:
    rows = [
        "| network | fp32 MP/s | auto MP/s (precision) | auto / fp32 | fp32 % of fp32 peak "
        "| auto % of bf16 peak | tiled == untiled (fp32, auto) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for arch in ("9-1-5", "9-5-5"):
        precision = res.get(f"auto precision {arch}", "?")
        tiling = [
            v for k, v in res.items() if k.startswith(f"tiled == untiled {arch}") and v is not None
        ]
        rows.append(
            f"| {arch} | {_num(res.get(f'ours {arch} MP/s'), '.2f')} "
            f"| {_num(res.get(f'auto {arch} MP/s'), '.2f')} ({precision}) "
            f"| {_num(res.get(f'auto / fp32 speedup {arch}'), '.2f')}x "
            f"| {_num(res.get(f'ours {arch} % peak'))} "
            f"| {_num(res.get(f'auto {arch} % bf16 peak'))} "
            f"| {', '.join('yes' if v else 'no' for v in tiling) or '–'} |"
        )
    return rows


def build(folder: Path) -> str:
    stages = [
        line.split("\t") for line in _text(folder / "stages.tsv").splitlines() if line.strip()
    ]
    cpu_all = _json(folder / "cpu.json")
    cpu = cpu_all.get("inference", {})
    gpu = _json(folder / "gpu.json").get("gpu", {})
    probe = _json(folder / "probe.json")
    machine = _text(folder / "machine.txt")
    why = (
        "no CUDA device on this machine"
        if "CUDA: not available" in machine
        else "the stage failed or did not run"
    )
    lines = ["# napari-srcnn GPU check", "", "## Machine", "", "```", machine.rstrip()]
    lines += ["```", "", "## Stages", "", "| stage | exit code | seconds |", "| --- | --- | --- |"]
    lines += [f"| {s[0]} | {s[1]} | {s[2]} |" for s in stages if len(s) >= 3]
    lines += ["", "## CPU rows (bf16 and fp32 side by side)", ""]
    if cpu:
        lines += [str(cpu_all.get("cpu", "")), ""]
        lines += _inference_rows(cpu)
    else:
        lines.append("not measured: the stage failed (see cpu_rows.txt)")
    lines += ["", "## GPU rows", ""]
    if gpu:
        lines += _inference_rows(gpu)
        lines += [
            "",
            "| 4096² uint16 ×3, 9-5-5 | seconds | MP/s | max_memory_allocated MB |",
            "| --- | --- | --- | --- |",
        ]
        for p in ("fp32", "bf16"):
            lines.append(
                f"| {p} | {_num(gpu.get(f'cuda 4096 x3 {p} seconds'), '.2f')} "
                f"| {_num(gpu.get(f'cuda 4096 x3 {p} MP/s'), '.0f')} "
                f"| {_num(gpu.get(f'cuda_peak_mb {p}'), '.0f')} |"
            )
        if "oom failed" in gpu:
            lines += ["", f"Out-of-memory halving FAILED: {gpu['oom failed']}"]
        elif "oom final block" in gpu:
            lines += [
                "",
                f"Out-of-memory halving under a {gpu.get('oom cap mb')} MB cap: block "
                f"{gpu.get('oom first block')} -> {gpu.get('oom final block')}, finished in "
                f"{_num(gpu.get('oom seconds'), '.2f')} s, max difference to the uncapped "
                f"result {gpu.get('oom max difference')} of 65535.",
            ]
    else:
        lines.append(f"not measured: {why} (see gpu_rows.txt)")
    lines += ["", "## Training probe (9-5-5 ×3)", ""]
    if probe:
        lines += [
            f"- device: {probe.get('device_name')}; data: {probe.get('data')}",
            f"- recipe: {probe.get('recipe')}",
            f"- steps: {probe.get('steps_done')} of {probe.get('steps_asked')} asked in "
            f"{_num(probe.get('wall_seconds'))} s (cancelled: {probe.get('cancelled')})",
            f"- steady rate: {_num(probe.get('steps_per_s'))} steps/s "
            f"({_num(probe.get('patches_per_s'), '.0f')} sub-images/s); overall "
            f"{_num(probe.get('steps_per_s_overall'))} steps/s with validation",
            f"- held-out PSNR: {_num(probe.get('held_out_psnr'), '.2f')} dB (bicubic "
            f"{_num(probe.get('held_out_bicubic_psnr'), '.2f')}, "
            f"{_num(probe.get('held_out_gain_db'), '+.2f')} dB)",
        ]
        if "set5_x3_psnr" in probe:
            lines.append(
                f"- Set5 ×3 (protocol, fp32): {_num(probe['set5_x3_psnr'], '.2f')} dB "
                f"(bicubic {_num(probe.get('set5_x3_bicubic_psnr'), '.2f')})"
            )
    else:
        lines.append(f"not run: {why} (see probe.txt)")
    for name, title in (
        ("cpu_rows.txt", "CPU benchmark output"),
        ("gpu_tests.txt", "GPU tests (pytest -m gpu)"),
        ("gpu_rows.txt", "GPU benchmark output"),
        ("probe.txt", "Training probe output"),
    ):
        text = _text(folder / name)
        if text:
            lines += ["", f"<details><summary>{title}</summary>", "", "```", text.rstrip()]
            lines += ["```", "", "</details>"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python benchmarks/gpu_report.py OUTDIR", file=sys.stderr)
        return 2
    folder = Path(args[0])
    (folder / "report.md").write_text(build(folder), encoding="utf-8")
    print(f"wrote {folder / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
