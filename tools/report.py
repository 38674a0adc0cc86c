"""The study report of an output tree: Table 1, accuracy vs shots, the paired answer,
analyses and the inventory, as one self-contained report.html plus report.md.

    python tools/report.py output/ --out report/
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report.cli import main  # noqa: E402

if __name__ == "__main__":
    from study.entry import run_main

    sys.exit(run_main(main))
