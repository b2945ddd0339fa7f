"""The PHP publisher (dualsync/producers/php) keeps the Python SDK's contract, on real services.

`dualsync/producers/php/tests/contract.php` publishes the same 1,000-event plan as the Node
test (every Extended JSON type the worker accepts, unicode, deletes, reference events,
signed events, version-domain and envelope errors; dates with microseconds, which PHP
has); each entry is read back with XRANGE, decoded by the worker's decoder and compared
with what `EventBuilder` builds; the events are applied by the real worker and give the
same rows as the Python SDK's; the spool is drained in order by PHP or by Python. Needs
`php` with the phpredis extension (`scripts/setup-php.sh`); skips, saying so, without it.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import _polyglot as poly
from tests.fix_shop import Shop

CMD = ["php", str(poly.PHP_DIR / "tests" / "contract.php")]


@pytest.fixture(scope="module")
def php_runtime() -> str:
    """`php -v`; skip when php or its redis extension is missing."""
    php = shutil.which("php")
    if php is None:
        pytest.skip("php is not installed: run scripts/setup-php.sh (php-cli, php-redis)")
    mods = subprocess.run([php, "-m"], capture_output=True, text=True, check=False).stdout
    if "redis" not in mods.split():
        pytest.skip("php has no redis extension (phpredis): run scripts/setup-php.sh")
    return subprocess.run([php, "-v"], capture_output=True, text=True, check=False).stdout


@pytest.fixture(scope="module")
def php_run(
    php_runtime: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[poly.Plan, poly.Run]]:
    """The 1,000-event plan, published once by the PHP script for this module's tests."""
    base = f"tp{uuid.uuid4().hex[:8]}"
    plan = poly.make_plan("php", base)
    yield plan, poly.run_script(CMD, plan.to_json(), tmp_path_factory.mktemp("php"), redis_url)
    asyncio.run(poly.delete_prefix(redis_url, base))


def test_php_events_match_the_python_sdk(
    php_run: tuple[poly.Plan, poly.Run], redis_url: str
) -> None:
    plan, run = php_run
    checked = poly.compare_run(plan, run, redis_url)
    assert checked.events == 1000
    assert checked.errors == 13  # every version-domain and envelope error, as Python raises it
    print(  # noqa: T201 - the measurement
        f"php: {checked.events} events published in {run.elapsed_s:.2f} s (process included), "
        f"{checked.identical_payload_bytes} payloads byte-identical to Python's"
    )


async def test_php_events_apply_to_the_same_rows_as_python_events(
    php_run: tuple[poly.Plan, poly.Run], shop: Shop
) -> None:
    theirs, ours = await poly.apply_both(php_run[0], shop)
    assert theirs == ours
    assert len(theirs["customers"]) > 50
    assert len(theirs["items"]) > 50
    assert ("customers", "big1", False, 7) in theirs["state"]  # a reference event, re-read


def test_php_spool_while_redis_is_down_then_drained_in_order(
    php_runtime: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    poly.check_spool_then_drain(CMD, redis_url, redis_prefix, tmp_path)


async def test_python_drains_a_php_spool_and_php_drains_a_python_spool(
    php_runtime: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    await poly.check_cross_drain(CMD, redis_url, redis_prefix, tmp_path)


def test_php_rides_out_an_outage_and_queues_new_events_behind_the_spool(
    php_runtime: str, redis_prefix: str, tmp_path: Path
) -> None:
    poly.check_outage(CMD, redis_prefix, tmp_path)


def test_ext_vector_refuses_what_is_no_float32(php_runtime: str) -> None:
    """`Ext::vector` (byte-for-byte pymongo's float32 vectors: the contract plan holds them)
    throws on what a vector column could not take, instead of sending NaN or infinity."""
    script = (
        'require "autoload.php"; use Dualsync\\Publisher\\Ext;'
        f'echo Ext::vector({poly.VECTOR_SAMPLE})["\\$binary"]["base64"], "\\n";'
        'foreach ([["a"], [1e39], [NAN], [null]] as $v) {'
        '  try { Ext::vector($v); echo "sent\\n"; }'
        '  catch (\\TypeError $e) { echo "TypeError\\n"; } }'
    )
    poly.check_ext_vector(["php", "-r", script], poly.PHP_DIR)
