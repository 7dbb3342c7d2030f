"""The style gallery: public-domain paintings shipped with the package (about 512 px each), plus
any folder a user adds. ``--style starry_night`` (CLI), ``stylize(photo, "starry_night")`` (Python)
and ``style_id=starry_night`` (HTTP) all find a painting by its id here."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from .io.read import IMAGE_EXTENSIONS

SAFE_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,99}$")
"""Ids are file stems of letters, digits, '_' and '-': nothing that could walk out of a folder."""


@dataclass(frozen=True)
class GalleryStyle:
    id: str
    title: str
    painter: str
    year: str
    licence: str
    path: Path

    def describe(self) -> dict:
        data = asdict(self)
        data.pop("path")
        return data


def shipped_folder() -> Path:
    return Path(str(resources.files("semstyle") / "assets" / "gallery"))


def load_gallery(extra: str | Path | None = None) -> dict[str, GalleryStyle]:
    """The shipped paintings, and the images of ``extra`` (a user's folder; its file stems are the
    ids, and they replace shipped ones of the same id)."""
    folder = shipped_folder()
    styles: dict[str, GalleryStyle] = {}
    manifest = folder / "gallery.json"
    if manifest.is_file():
        for item in json.loads(manifest.read_text()):
            styles[item["id"]] = GalleryStyle(item["id"], item["title"], item["painter"], item["year"],
                                              item["licence"], folder / item["file"])
    if extra is not None:
        for path in sorted(Path(extra).iterdir()):
            stem = path.stem.lower()
            if path.suffix.lower() in IMAGE_EXTENSIONS and SAFE_ID.match(stem) and not path.name.startswith("."):
                styles[stem] = GalleryStyle(stem, path.stem.replace("_", " "), "", "", "provided by the user", path)
    return styles


def find_style(name: str, gallery: dict[str, GalleryStyle] | None = None) -> Path | None:
    """The gallery file for an id, or None (ids that are not safe names are never looked up)."""
    if not isinstance(name, str) or not SAFE_ID.match(name):
        return None
    entry = (gallery if gallery is not None else load_gallery()).get(name)
    return entry.path if entry else None
