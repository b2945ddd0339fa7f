"""MongoDB for tests: mongomock-motor always, and a real server when MONGO_URL is set.

No MongoDB server can be had on the development machines, so the default suite runs the
Mongo adapter against `mongomock-motor`; the same tests marked `mongo` run against the
server at MONGO_URL (docker-compose provides one) and skip, saying so, without it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest


@pytest.fixture
async def mock_mongo_db() -> AsyncIterator[Any]:
    """A fresh mongomock-motor database."""
    from mongomock_motor import AsyncMongoMockClient  # noqa: PLC0415 - test-only dependency

    client: Any = AsyncMongoMockClient()
    yield client[f"t{uuid.uuid4().hex[:8]}"]
    client.close()


@pytest.fixture
async def real_mongo_db() -> AsyncIterator[Any]:
    """A fresh database on the real server at MONGO_URL, dropped afterwards."""
    url = os.environ.get("MONGO_URL")
    if not url:
        pytest.skip("MONGO_URL is not set: no real MongoDB here (docker compose up mongo)")
    from motor.motor_asyncio import AsyncIOMotorClient  # noqa: PLC0415 - only with MONGO_URL

    client: Any = AsyncIOMotorClient(url, serverSelectionTimeoutMS=3000)
    name = f"dualsync_t{uuid.uuid4().hex[:8]}"
    yield client[name]
    await client.drop_database(name)
    client.close()
