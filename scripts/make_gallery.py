"""Build the shipped style gallery: every painting of ../shared/data/styles at 512 px, with its
painter, title, year and licence from ../shared/data/SOURCES.md, into src/semstyle/assets/gallery/.

Run: .venv/bin/python scripts/make_gallery.py   (idempotent; the output is committed)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
OUT = REPO / "src" / "semstyle" / "assets" / "gallery"
SIDE = 512


def rows() -> list[dict]:
    text = (SHARED / "SOURCES.md").read_text()
    section = text[text.index("## styles/"):]
    section = section[:section.index("\n## ", 3)] if "\n## " in section[3:] else section
    entries = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6 or not cells[0].startswith("`styles/"):
            continue
        name = Path(cells[0].strip("`")).stem
        author_title = cells[4]
        painter, _, title = author_title.partition(":")
        title = title.strip().strip("*").strip()
        year = re.search(r"(1[0-9]{3}|c\. ?1[0-9]{3})", title)
        entries.append({"id": name, "title": title, "painter": re.sub(r"\s*\(.*?\)", "", painter).strip(),
                        "year": year.group(1) if year else "", "licence": cells[5]})
    return entries


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    gallery = []
    for entry in rows():
        img = Image.open(SHARED / "styles" / f"{entry['id']}.jpg").convert("RGB")
        img.thumbnail((SIDE, SIDE), Image.LANCZOS)
        img.save(OUT / f"{entry['id']}.jpg", quality=88)
        gallery.append({**entry, "file": f"{entry['id']}.jpg", "width": img.width, "height": img.height})
    (OUT / "gallery.json").write_text(json.dumps(sorted(gallery, key=lambda g: g["id"]), indent=1) + "\n")
    print(f"{len(gallery)} paintings -> {OUT}")


if __name__ == "__main__":
    main()
