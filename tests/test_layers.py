"""The package's layers: each imports only layers below it (lazy imports count), no cycles,
no module over 500 lines. The README's "How it works" draws the same picture."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from .helpers import DATA, REPO

SRC = REPO / "src"

LAYERS = [
    ("base", {"semstyle.errors", "semstyle.files", "semstyle.config", "semstyle.devices", "semstyle.tensorfile",
              "semstyle.geometry", "semstyle.colour",
              "semstyle.optimize"}),
    ("torch modules", {"semstyle.nn"}),
    ("files on disk", {"semstyle.io", "semstyle.weights", "semstyle.checkpoints", "semstyle.gallery"}),
    ("pipeline", {"semstyle.pipeline"}),
    ("ONNX runtime", {"semstyle.runtime"}),
    ("semantic", {"semstyle.semantic"}),
    ("video", {"semstyle.video"}),
    ("training", {"semstyle.train"}),
    ("export", {"semstyle.export"}),
    ("Python API", {"semstyle.stylizer"}),
    ("HTTP service", {"semstyle.server"}),
    ("command line", {"semstyle.cli"}),
]
"""Bottom to top. ``semstyle`` itself (the lazy ``Stylizer`` export and ``__version__``) sits outside."""

MAX_LINES = 500


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "semstyle").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def layer_of(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return index
    raise AssertionError(f"{module} belongs to no layer; add it to LAYERS and the README")


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every semstyle module ``module`` imports, at module level or inside functions."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            mod = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and name.startswith("semstyle"):
                targets.add(name)
    return targets


def test_every_layer_imports_only_layers_below_it():
    known = modules()
    wrong = []
    for module, path in sorted(known.items()):
        if module == "semstyle":
            continue
        for target in imports_of(module, path, known):
            if target == "semstyle":  # __version__ only
                continue
            if layer_of(target) > layer_of(module):
                wrong.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                             f"({LAYERS[layer_of(target)][0]})")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_over_500_lines():
    long = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_shared_layer_tool_finds_no_cycle():
    tool = DATA.parent / "tools" / "layers.py"
    result = subprocess.run([sys.executable, str(tool), str(SRC), "semstyle"], capture_output=True, text=True)
    assert result.returncode == 0 and "cycles: none" in result.stdout, result.stdout + result.stderr


def test_data_path_is_written_once():
    """Only the generator combines injection and decoding; nothing outside nn/ reaches into
    the generator's submodules (injection, decoder, modulations)."""
    offenders = []
    for module, path in modules().items():
        if module.startswith("semstyle.nn"):
            continue
        text = path.read_text()
        for needle in (".injection.", ".decoder.", ".modulations", ".style_encoder.", ".affine(", "regionwise"):
            if needle in text:
                offenders.append(f"{module}: {needle}")
    assert not offenders, offenders
