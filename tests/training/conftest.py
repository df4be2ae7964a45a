"""The toy task, built once per test module (its graphs are memoised per task object)."""
from __future__ import annotations

import pytest

from tests.helpers import toy_task


@pytest.fixture(scope="module")
def task():
    return toy_task()
