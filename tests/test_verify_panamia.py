"""The verifier on panamia's Mongo collections (mongomock-motor): a rounded decimal and a
changed secret are found, and the secret's value appears nowhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from dualsync.producers.stores import open_stores
from dualsync.schema.mapping import load_mapping
from examples._stores import write_mongo
from examples.panamia.generator import generate
from tests._verify_support import ROOT, App, backfill, by_key, migrate

SECRET = "ya29.PLANTED-SECRET-7c1f"


@pytest.fixture
async def panamia(
    pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path, mock_mongo_db: Any
) -> App:
    migrate("panamia", pg_url)
    ms = load_mapping(ROOT / "examples" / "panamia" / "mapping.yaml")
    await write_mongo(ms, generate(40, 5), mock_mongo_db)
    app = App(ms, open_stores(ms, mongo_db=mock_mongo_db), pg_url, redis_url, redis_prefix)
    app.sql("truncate bookings, listings, sessions, accounts, verification_tokens, users, "
            "dualsync.row_state cascade")  # fmt: skip
    await backfill(app, tmp_path)
    return app


async def test_rounded_decimal_and_changed_secret(panamia: App, mock_mongo_db: Any) -> None:
    for entity in panamia.ms.entities:
        _, clean = await panamia.verify(entity)
        assert clean.drift == 0, (entity, clean.confirmed())
    [(listing, price)] = panamia.sql(
        "select l.id, l.price_per_day from listings l order by id limit 1"
    )
    panamia.sql("update listings set price_per_day = round(price_per_day) + 0.5 where id = %s",
                listing)  # fmt: skip
    account = await mock_mongo_db["accounts"].find_one({"access_token": {"$ne": None}})
    await mock_mongo_db["accounts"].update_one(
        {"_id": account["_id"]}, {"$set": {"access_token": SECRET}}
    )  # the legacy side changed, and no event said so
    with capture_logs() as logs:
        run_l, listings = await panamia.verify("listings")
        run_a, accounts = await panamia.verify("accounts")
    assert [(k, f) for k, f in by_key(listings).values()] == [("mismatch", ["price_per_day"])]
    assert by_key(accounts) == {str(account["_id"]): ("mismatch", ["access_token"])}
    assert price is not None
    stored = panamia.sql("select * from dualsync.verify_findings where run_id in (%s, %s)",
                         run_l, run_a)  # fmt: skip
    runs = panamia.sql("select * from dualsync.verify_runs where id in (%s, %s)", run_l, run_a)
    everything = repr(stored) + repr(runs) + orjson.dumps(logs, default=str).decode()
    everything += repr(accounts) + repr(listings)
    assert SECRET not in everything
    assert "PLANTED" not in everything
