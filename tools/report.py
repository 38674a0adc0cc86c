"""The study report of an output tree: Table 1, accuracy vs shots, the paired answer,
analyses and the inventory, as one self-contained report.html plus report.md.

    python tools/report.py output/ --out report/
"""
from __future__ import annotations

import sys


from reporting.cli import main

if __name__ == "__main__":
    from study.entry import run_main

    sys.exit(run_main(main))
