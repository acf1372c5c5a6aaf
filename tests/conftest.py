"""Shared test set-up."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """2 shared cores: one intra-op thread avoids oversubscription stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def data_root(tmp_path_factory):
    """Generated data (MNIST-1D's small set) goes to one temporary root, never the checkout."""
    import os

    root = tmp_path_factory.mktemp("data")
    before = os.environ.get("METAKIT_DATA")
    os.environ["METAKIT_DATA"] = str(root)
    yield root
    if before is None:
        os.environ.pop("METAKIT_DATA", None)
    else:
        os.environ["METAKIT_DATA"] = before
