from __future__ import annotations

import pytest

from corral import App
from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q


@pytest.fixture
async def engine(app: App) -> Engine:
    eng = await app.engine()
    await eng.configure("q", ev=1)  # these tests look at the events each script records
    return eng


@pytest.fixture
def keys(engine: Engine) -> QueueKeys:
    return engine.keys(Q)


@pytest.fixture
def ops(engine: Engine) -> Engine:
    return engine
