"""Every test in this folder runs the worker through faults on a real broker (slow)."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/reliability/" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.slow)
