"""Imports flow one way (DESIGN.md): the library packages never pull in the orchestration stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("ray", "hydra", "optuna")


@pytest.mark.parametrize("package", ["metrics", "react_models", "react_data", "search_spaces"])
def test_library_package_imports_no_orchestration_stack(package: str) -> None:
    allowed = {"search_spaces": {"optuna"}}.get(package, set())
    code = (
        f"import sys, {package}\n"
        f"bad = sorted(m for m in {HEAVY!r} if m in sys.modules and m not in {sorted(allowed)!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing {package} loaded {out.stdout.strip()}"
