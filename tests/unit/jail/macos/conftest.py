"""The stand-in for sandbox-exec that the macOS backend's tests run on Linux."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.jail.macos.test_sandbox_exec import FAKE_SANDBOX_EXEC


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    path = tmp_path / "sandbox-exec"
    path.write_text(FAKE_SANDBOX_EXEC)
    path.chmod(0o755)
    return path
