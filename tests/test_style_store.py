"""Style vectors on disk (pipeline/style_store.py): a later process reuses a painting's vector."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from semstyle.pipeline.style_store import StyleStore, image_key
from semstyle.stylizer import Stylizer

from .helpers import data_dir

PAINTING = data_dir("styles") / "starry_night.jpg"


def test_a_new_engine_reads_the_vector_an_earlier_one_stored(model, fresh_store):
    first = Stylizer(model, precision="fp32")
    vector = first.style_vector(PAINTING)
    assert len(list(fresh_store.folder.glob("*.npy"))) == 1
    later = Stylizer(model, precision="fp32")  # a new process would start the same way
    cache = later.engine.style_cache
    assert torch.equal(later.style_vector(PAINTING), vector) and cache.hits == 1 and cache.misses == 0
    # what is on disk is what is used: a vector put there for this painting comes back
    planted = np.full_like(vector.numpy(), 0.25)
    fresh_store.put(image_key(str(PAINTING), later.options.style_size), planted)
    newest = Stylizer(model, precision="fp32")
    assert torch.equal(newest.style_vector(PAINTING), torch.from_numpy(planted))


def test_other_precision_or_changed_weights_get_their_own_vectors(model, fresh_store, tmp_path):
    assert Stylizer(model, precision="bf16").engine.style_cache.store.folder != fresh_store.folder
    copy = shutil.copytree(model, tmp_path / "retrained")
    before = Stylizer(copy, precision="fp32").engine.style_cache.store.folder
    weights = copy / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert Stylizer(copy, precision="fp32").engine.style_cache.store.folder != before


def test_a_damaged_entry_is_encoded_again(model, fresh_store):
    vector = Stylizer(model, precision="fp32").style_vector(PAINTING)
    (entry,) = fresh_store.folder.glob("*.npy")
    entry.write_bytes(b"not an array")
    again = Stylizer(model, precision="fp32")
    assert torch.equal(again.style_vector(PAINTING), vector) and again.engine.style_cache.misses == 1
    assert np.load(entry).shape == vector.shape  # replaced by a good one


def test_an_unwritable_store_is_skipped(model, photo, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder would go")
    store = StyleStore("x", root=blocked)
    store.put("key", np.zeros((1, 4), np.float32))  # no error
    assert store.get("key") is None


def test_the_onnx_runtime_reuses_stored_vectors(model, tmp_path):
    pytest.importorskip("onnxruntime")
    from semstyle.export.onnx import export_onnx
    from semstyle.runtime.onnx import OnnxStylizer

    folder = export_onnx(model, tmp_path / "onnx")
    first = OnnxStylizer(folder)
    try:
        vector = first.style_vector(str(PAINTING))
        key = image_key(str(PAINTING), first.options.style_size)
        assert np.array_equal(first.store.get(key), vector)
        first.store.put(key, np.full_like(vector, 0.5))
        assert np.array_equal(OnnxStylizer(folder).style_vector(str(PAINTING)), np.full_like(vector, 0.5))
    finally:
        shutil.rmtree(first.store.folder, ignore_errors=True)


def test_lru_memo_keeps_the_most_recently_used():
    """The memo of style vectors and colour moments: a look-up renews an entry, the least recently
    used goes first, ``None`` keys are never kept."""
    from semstyle.pipeline.lru import LruMemo

    memo: LruMemo[int] = LruMemo(2)
    memo.remember("a", 1)
    memo.remember("b", 2)
    assert memo.lookup("a") == 1  # "a" is now newer than "b"
    memo.remember("c", 3)
    assert (memo.lookup("a"), memo.lookup("b"), memo.lookup("c")) == (1, None, 3)
    memo.remember(None, 4)
    assert len(memo) == 2 and memo.lookup(None) is None
