import os
import shutil

import pytest
import torch
from PIL import Image

from .helpers import DATA, REQUIRED_DATA, data_dir
from .models_fixture import tiny_model_dir

# Two cores: keep torch from oversubscribing them when tests spawn processes.
torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_configure(config):
    """The suite needs the shared test images; without them it stops at once, in one
    line (exit code 4), instead of skipping its way to a green run that tested nothing."""
    missing = [name for name in REQUIRED_DATA if not (DATA / name).is_dir()]
    if missing:
        raise pytest.UsageError(f"test data not found: {DATA} (missing {', '.join(missing)}); the tests need a "
                                f"checkout of the shared data beside this repository (../shared/data)")


@pytest.fixture(scope="session")
def vgg():
    """The real pretrained encoder (in the user cache: make install fetches it)."""
    from semstyle.weights import load_encoder

    return load_encoder()


# The command-line tests' inputs (modules with fixtures of the same names use their own).

@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny real model folder."""
    return tiny_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture
def fresh_store(model):
    """The tiny model's store, emptied before and after (its folder is unique to the model's file)."""
    from semstyle.stylizer import Stylizer

    store = Stylizer(model, precision="fp32").engine.style_cache.store
    shutil.rmtree(store.folder, ignore_errors=True)
    yield store
    shutil.rmtree(store.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    """A small copy of a real painting, its name with spaces and an ampersand."""
    img = Image.open(data_dir("styles") / "starry_night.jpg")
    img.thumbnail((96, 96))
    path = tmp_path_factory.mktemp("style") / "starry night & co.jpg"
    img.save(path)
    return path


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A small real photo, 90x60."""
    img = Image.open(data_dir("content") / "chicago.jpg").convert("RGB").resize((90, 60))
    path = tmp_path_factory.mktemp("photo") / "chicago.png"
    img.save(path)
    return path
