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
