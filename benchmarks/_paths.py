"""Puts the repository root on sys.path so the benchmarks can use the test fixtures
(tests/synthetic.py, tests/compare_synthetic.py), which are not part of the installed package."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
