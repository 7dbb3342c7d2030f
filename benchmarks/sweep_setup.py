"""What the tuning sweeps (refine_sweep.py, fit_sweep.py) share: their common flags and the
stylizer and scorer they build from them, so both score the same way."""

from __future__ import annotations

import argparse

import torch

from benchmarks.quality import Scorer


def add_sweep_options(parser: argparse.ArgumentParser, size: int) -> None:
    """--size (longer side, default ``size``), --threads and --model."""
    parser.add_argument("--size", type=int, default=size, help=f"longer side in px (default {size})")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help="semstyle model (default: the shipped one)")


def sweep_tools(args: argparse.Namespace):
    """The stylizer of ``--model`` and quality.py's scorer, on the CPU with ``--threads``."""
    from semstyle import Stylizer

    torch.set_num_threads(args.threads)
    return Stylizer(args.model) if args.model else Stylizer(), Scorer(torch.device("cpu"))
