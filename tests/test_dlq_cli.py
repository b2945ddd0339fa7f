"""`dualsync dlq` list/show/replay/purge through the CLI, on the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest

from dualsync.ops import dlq
from dualsync.ops.cli import main
from dualsync.settings import get_settings
from tests.fix_shop import Shop, customer, spec


@pytest.fixture
def cli_env(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", shop.db)
    monkeypatch.setenv("REDIS_URL", shop.redis_url)
    monkeypatch.setenv("DUALSYNC_PREFIX", shop.prefix)
    monkeypatch.setenv("DUALSYNC_SHARDS", str(shop.shards))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _make_letters(shop: Shop) -> None:
    pub = shop.publisher()
    await pub.publish_many(
        [spec("customers", f"bad{i}", customer(i, tier="platinum"), 1) for i in range(3)]
    )
    await pub.aclose()
    await shop.drain()


async def test_list_show_replay_purge(
    shop: Shop, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    await _make_letters(shop)
    capsys.readouterr()
    assert await asyncio_main(["dlq", "list", "--json"]) == 0
    lines = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["reason"] for x in lines] == ["mapping"] * 3
    assert "tok-" not in str(lines)
    first = lines[0]["id"]

    assert await asyncio_main(["dlq", "show", first]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["key"] == lines[0]["key"]
    assert shown["fields"]["payload"]

    assert await asyncio_main(["dlq", "replay", "--all", "--dry-run"]) == 0
    assert "3 dead letter(s) would replay" in capsys.readouterr().out
    assert len(await dlq.list_letters(shop.redis, shop.prefix)) == 3

    assert await asyncio_main(["dlq", "replay", first]) == 0
    assert len(await dlq.list_letters(shop.redis, shop.prefix)) == 2

    assert await asyncio_main(["dlq", "purge", "--older-than", "1d"]) == 0
    assert len(await dlq.list_letters(shop.redis, shop.prefix)) == 2
    assert await asyncio_main(["dlq", "purge", "--older-than", "0s"]) == 0
    assert await dlq.list_letters(shop.redis, shop.prefix) == []


async def test_bad_arguments_are_one_line(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio_main(["dlq", "purge", "--older-than", "soon"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "e.g. 30m, 12h, 7d" in err
    assert await asyncio_main(["dlq", "replay"]) == 2
    assert await asyncio_main(["dlq", "show", "1-1"]) == 1
    assert "no dead letter" in capsys.readouterr().err


async def asyncio_main(argv: list[str]) -> int:
    """The CLI runs its own event loop: call it from a worker thread."""
    return await asyncio.to_thread(main, argv)
