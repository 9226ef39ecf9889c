import time

import numpy as np
import pytest

import ember


def pytest_benchmark_update_machine_info(config, machine_info):
    cpu = ember.cpu_info()
    machine_info["ember"] = {
        "version": ember.__version__,
        "isa": cpu["isa"],
        "kernels": cpu["kernels"],
        "brand": cpu["brand"],
        "threads": ember.get_num_threads(),
        "numpy": np.__version__,
    }


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def quiet_machine():
    """Lets the previous benchmark's thread pool go idle first. OpenBLAS's threads keep spinning
    for a while after a call (and libgomp's briefly), taking a core from whoever runs next: this
    gives each library the machine to itself."""
    time.sleep(0.5)
