"""Prefect flows (deadline sweeps, outbox delivery): thin loops over engine commands.

Prefect reads its settings when it is first imported, so the embedded defaults are set here:
its home under ./var/ (or REDRESS_VAR_DIR) and analytics off. Anything set in the environment
already wins.
"""

import os
from pathlib import Path

_var = Path(os.environ.get("REDRESS_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
os.environ.setdefault("PREFECT_HOME", str(_var / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
