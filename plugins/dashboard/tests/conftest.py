"""The dashboard's tests: ``browser_hub`` (a hub served from a thread) is importable."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # browser_hub.py
