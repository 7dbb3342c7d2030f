"""Build ``.gpu/`` (ignored), what a borrowed GPU machine needs beside the repository, in a few MB.

Nothing can be downloaded there and at most 64 MiB travels with the working tree, so this packs:

* ``content/``: the training photos (the folder ``make train-content`` links), shorter side 512 px
  (training stores them at twice the crop size, 2 x 256), JPEG quality 92;
* ``styles/``: the 26 shared paintings, the same way;
* ``vgg16_to_relu4_1.fp16.safetensors``: VGG16's convolutions up to relu4_1, the deepest layer any
  training loss reads, in float16 (5.8 MB against the cache's 60 MB). ``expand_vgg.py`` turns it
  back into a 13-convolution file there.

Run here: ``python scripts/gpu/prepare_carry.py`` (after ``make train-content``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image
from safetensors.torch import save_file

from semstyle.io.read import list_images, load_image
from semstyle.nn.vgg import VGG16_BLOCKS, tap_names, torchvision_conv_indices
from semstyle.weights import load_vgg_state

REPO = Path(__file__).resolve().parents[2]
KEPT_CONVS = tap_names(VGG16_BLOCKS).index("relu4_1") + 1
"""VGG16's convolutions up to and including relu4_1's (eight: torchvision indices 0 to 17)."""


def shrink_folder(source: Path, dest: Path, short_side: int) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in list_images(source):
        img = load_image(path)
        scale = short_side / min(img.size)
        if scale < 1:
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        img.save(dest / (path.stem + ".jpg"), quality=92)
        count += 1
    return count


def pack_vgg(dest: Path) -> list[str]:
    state, preprocessing = load_vgg_state()
    kept = {f"features.{index}.{part}": state[f"features.{index}.{part}"].half().contiguous()
            for index in torchvision_conv_indices(VGG16_BLOCKS)[:KEPT_CONVS] for part in ("weight", "bias")}
    save_file(kept, str(dest), metadata={"preprocessing": preprocessing, "kept_convs": str(KEPT_CONVS)})
    return sorted(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / ".gpu")
    parser.add_argument("--short-side", type=int, default=512)
    args = parser.parse_args()
    photos = shrink_folder(REPO / "data" / "train_content", args.out / "content", args.short_side)
    paintings = shrink_folder(REPO.parent / "shared" / "data" / "styles", args.out / "styles", args.short_side)
    names = pack_vgg(args.out / "vgg16_to_relu4_1.fp16.safetensors")
    print(f"{photos} photos, {paintings} paintings, {len(names)} VGG tensors -> {args.out}")


if __name__ == "__main__":
    main()
