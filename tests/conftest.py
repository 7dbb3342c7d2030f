import os

import pytest
import torch

from .helpers import DATA, REQUIRED_DATA

# Two cores: keep torch from oversubscribing them when tests spawn processes.
torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_sessionstart(session):
    """The suite needs the shared test images; without them it stops at once, in one
    line, instead of skipping its way to a green run that tested nothing."""
    missing = [name for name in REQUIRED_DATA if not (DATA / name).is_dir()]
    if missing:
        pytest.exit(f"test data not found: {DATA} (missing {', '.join(missing)}); the tests need a checkout of "
                    f"the shared data beside this repository (../shared/data)", returncode=4)


@pytest.fixture(scope="session")
def vgg():
    """The real pretrained encoder (in the user cache: make install fetches it)."""
    from semstyle.weights import load_encoder

    return load_encoder()
