"""Shared fixtures: a small random-weight CLIP written to disk once per test session."""
from __future__ import annotations

import os

import pytest
import torch

from tools.small_clip import save_small_clip

# The toolbox imports wilds, whose 'outdated' dependency checks PyPI for a newer version on
# import: a warning and a network attempt in every test process, including train.py runs.
os.environ.setdefault("OUTDATED_IGNORE", "1")

# Commands the tests start (tools, benchmarks, stand-ins) import this checkout's packages, not
# those of whichever checkout the editable install points at.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != REPO])

# Helper modules that assert on behalf of several test files: pytest rewrites their asserts as
# it does the test files' own, so a failure shows the values compared.
pytest.register_assert_rewrite("tests.support.parse_res_helpers", "tests.support.analyze_prompts_helpers",
                              "tests.support.scripts_helpers")


@pytest.fixture(scope="session")
def small_clip_file(tmp_path_factory) -> str:
    """A state-dict file of a small ViT CLIP (32x32 input, widths 64); no download."""
    return save_small_clip(str(tmp_path_factory.mktemp("clip") / "small_clip.pt"))


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory):
    """The real train.py runs several end-to-end modules read, trained once per session (by
    the first xdist worker that asks): tests/support/shared_runs.py. Read-only."""
    from tests.support.shared_runs import SharedRuns

    return SharedRuns.for_session(tmp_path_factory)


@pytest.fixture()
def small_clip(small_clip_file):
    """A freshly loaded fp32 small CLIP on the CPU (fresh, so tests may change it)."""
    from trainers.dapt_init.clip_loading import load_clip

    return load_clip("ViT-B/16", small_clip_file).float()


@pytest.fixture(autouse=True)
def _restore_torch_seed():
    state = torch.random.get_rng_state()
    yield
    torch.random.set_rng_state(state)


def pytest_configure(config):
    # CI installs the toolbox and sets this: a missing toolbox must fail, not skip quietly.
    from tests.support.toolbox import HAVE_TOOLBOX

    if os.environ.get("DAPT_REQUIRE_TOOLBOX") == "1" and not HAVE_TOOLBOX:
        raise pytest.UsageError(
            "DAPT_REQUIRE_TOOLBOX=1 but the Dassl toolbox is not importable: run "
            "'bash scripts/setup.sh' first (README, 'Quick start')"
        )


    # CI holds the real host codebases' archives and sets this: their tests must run.
    if os.environ.get("DAPT_REQUIRE_HOSTS") == "1":
        from tests.end_to_end.test_hosts import HOSTS, HOSTS_SKIP_REASON

        if not HOSTS:
            raise pytest.UsageError(f"DAPT_REQUIRE_HOSTS=1 but {HOSTS_SKIP_REASON}")


def pytest_collection_modifyitems(config, items):
    """Give every test marked ``requires_toolbox`` the ``toolbox`` marker, for ``-m``; and run
    the end-to-end modules first. pytest-xdist (--dist loadfile) hands out whole modules in
    collection order: the long ones first keep a worker from starting one at the end while the
    other waits (the order within a module is unchanged)."""
    from tests.support.toolbox import SKIP_REASON

    for item in items:
        if any(mark.kwargs.get("reason") == SKIP_REASON for mark in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.toolbox)
    items.sort(key=lambda item: "end_to_end" not in item.path.parts)  # stable sort
