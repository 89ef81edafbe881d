"""Tests of netjail.settings, one file per module. A package, so that names such as test_load.py cannot clash
with a test of the same name elsewhere."""

import pytest

# settings_files.refused() asserts on the message: let pytest explain a failure as it does in a test file.
pytest.register_assert_rewrite(f"{__name__}.settings_files")
