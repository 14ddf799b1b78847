"""Fixtures and markers shared by the test modules.

``@pytest.mark.extra("tvm")`` marks a test that needs an optional extra: it is skipped, naming the
install command, where the extra is absent. ``NAS_REQUIRE_EXTRAS=1`` (set by ``.ci/run``, which installs
``.[all,dev]``) turns a missing extra into a failed run, so CI never passes by skipping.
"""

from __future__ import annotations

import os

import pytest
import torch

from nas.extras import EXTRAS, available, install_command


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "extra(name): needs the optional extra 'name' (nas.extras.EXTRAS)")
    config.addinivalue_line("markers", "default_workers: keep ExperimentConfig's real default for workers")


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = [extra for extra in EXTRAS if not available(extra)]
    if os.environ.get("NAS_REQUIRE_EXTRAS") and missing:
        pytest.exit(f"NAS_REQUIRE_EXTRAS is set but extras are missing: {', '.join(missing)}", returncode=3)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for extra in (mark.args[0] for mark in item.iter_markers("extra")):
        if not available(extra):
            pytest.skip(f"needs the '{extra}' extra: {install_command(extra)}")


@pytest.fixture(scope="module")
def single_thread():
    """Batch-1 forwards of small networks: one torch thread is fastest, and immune to a busy second core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def one_worker_unless_asked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Experiments in tests run one worker unless they set ``workers``. The default, one per core, spawns
    a second process on CI: it sees none of a test's patches, draws its own seeds, and may start a surplus
    trial that ends FAIL (``nas.search.run.SurplusTrial``), so exact trial counts and states would be a
    race. ``tests/test_search_run.py`` tests several workers on purpose."""
    if request.node.get_closest_marker("default_workers") is None:
        monkeypatch.setattr("nas.search.config.default_workers", lambda: 1)
