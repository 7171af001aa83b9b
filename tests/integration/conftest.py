"""Fixtures for tests of the engine against real registries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from signgate.registry import RegistryClient
from support.engine import Checker, options_for
from support.registry import RegistryServer


@pytest.fixture
async def check(registry: RegistryServer) -> AsyncIterator[Checker]:
    """Verify images on the anonymous registry with the real engine."""
    async with RegistryClient(options_for(registry)) as client:
        yield Checker(client)
