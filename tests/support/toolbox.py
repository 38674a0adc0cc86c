"""Marker for tests that need the Dassl toolbox.

Dassl is not on the package index. Tests that drive the real toolbox are marked with
``requires_toolbox``: conftest.py gives them the ``toolbox`` marker (``pytest -m "not toolbox"``
runs the rest), and they are skipped, with the reason below, where Dassl is not importable. CI installs the
toolbox and sets ``DAPT_REQUIRE_TOOLBOX=1``, which turns a missing toolbox into an error
(conftest.py) instead of a skip.
"""
import importlib.util

import pytest

HAVE_TOOLBOX = importlib.util.find_spec("dassl") is not None

SKIP_REASON = (
    "Dassl toolbox not installed: run 'bash scripts/setup.sh' (README, 'Quick start') to run the "
    "integration tests"
)


requires_toolbox = pytest.mark.skipif(not HAVE_TOOLBOX, reason=SKIP_REASON)
