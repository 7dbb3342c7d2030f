#!/usr/bin/env python
"""Assemble the shipped "balanced" model: the default model with the fast model's light encoder.

Both shipped models read the same style vectors (the fast model was distilled with the default
model's style encoder and injection frozen) and the fast model's light encoder was trained to
reproduce VGG's relu3_1, the default decoder's input. benchmarks/swap_parts.py showed the default
decoder does not mind the swap (style distance 0.425 against 0.432), so the default model's
pictures need not pay for VGG's half of the arithmetic: no training, only a new combination.

    .venv/bin/python scripts/make_balanced_model.py            # -> src/semstyle/assets/balanced
"""

from __future__ import annotations

import argparse
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "src" / "semstyle" / "assets"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--default", type=Path, default=ASSETS / "default", help="the default model's folder")
    parser.add_argument("--fast", type=Path, default=ASSETS / "fast", help="the fast model's folder")
    parser.add_argument("-o", "--out", type=Path, default=ASSETS / "balanced", help="the new model's folder")
    args = parser.parse_args(argv)

    import dataclasses

    from semstyle.checkpoints import export_model, load_generator
    from semstyle.nn.generator import Generator

    (default, _), (fast, _) = load_generator(args.default), load_generator(args.fast)
    if default.content_encoder is not None or fast.content_encoder is None:
        raise SystemExit("--default must read VGG features and --fast have a light encoder")
    config = dataclasses.replace(default.config, content_encoder="light", light_width=fast.config.light_width)
    balanced = Generator(config)
    balanced.load_state_dict({**default.state_dict(),
                              **{f"content_encoder.{k}": v for k, v in fast.content_encoder.state_dict().items()}})
    path = export_model(balanced, args.out, half=True,
                        info={"source": f"{args.default.name} + the light encoder of {args.fast.name}"})
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
