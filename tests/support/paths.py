"""Where the suite's files are. Imports no `app` module: the rootdir conftest reads it before it sets
the environment the app is built from."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Per run, so two runs on one machine (a developer and CI, or parallel sessions) never share a cluster.
TEST_VAR = ROOT / "var" / "test" / f"run-{os.getpid()}"
