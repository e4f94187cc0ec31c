"""tests/bench/core_cost.py measures the core's cost per message; its figures are its job, not a
test's. This runs each of its workloads briefly, in memory, so the script keeps working (the
workloads check what comes back: every publish confirmed, every delivery whole)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _core_cost() -> ModuleType:
    path = Path(__file__).parent / "bench" / "core_cost.py"
    spec = importlib.util.spec_from_file_location("core_cost", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("phase", ["publish", "consume", "roundtrip"])
@pytest.mark.parametrize("messages", [130, 1000])  # inside one read and prefetch, and across
def test_each_workload_runs_and_checks_what_comes_back(phase: str, messages: int) -> None:
    core_cost = _core_cost()
    measured: list[int] = []

    def measure(run: Any) -> Any:
        measured.append(1)
        return run()

    core_cost.run_phase(phase, messages, measure)
    assert measured == [1]
