"""The Node publisher (dualsync/producers/node) keeps the Python SDK's contract, on real services.

`dualsync/producers/node/test/contract.mjs` publishes a plan of 1,000 events (every
Extended JSON type the worker accepts, unicode keys and payloads, deletes, reference
events, signed events, version-domain and envelope errors); each entry is read back with
XRANGE, decoded by the worker's decoder and compared with what `EventBuilder` builds for
the same specs; the events are applied by the real worker and give the same rows as the
Python SDK's. The spool: events published while Redis is unreachable are fsynced to disk
and drained in order later (by Node or by Python), nothing lost. See tests/_polyglot.py.
"""

from __future__ import annotations

import asyncio
import fcntl
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import _polyglot as poly
from tests.fix_shop import Shop

CMD = ["node", str(poly.NODE_DIR / "test" / "contract.mjs")]
INSTALLED = poly.NODE_DIR / "node_modules" / "redis" / "package.json"


@pytest.fixture(scope="module")
def node_package() -> Path:
    """The package with its node_modules (`npm ci` once, under a lock); skip without Node/npm."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed (the Node publisher needs Node >= 18.19)")
    if INSTALLED.exists():
        return poly.NODE_DIR
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot install the Node publisher's dependencies")
    lock = Path(tempfile.gettempdir()) / "dualsync-npm-ci.lock"
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # two suites at once must not both run npm ci
        if not INSTALLED.exists():
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=poly.NODE_DIR,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if proc.returncode != 0:
                pytest.skip(f"npm ci failed in {poly.NODE_DIR}: {proc.stderr.strip()[-500:]}")
    return poly.NODE_DIR


@pytest.fixture(scope="module")
def node_run(
    node_package: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[poly.Plan, poly.Run]]:
    """The 1,000-event plan, published once by the Node script for this module's tests."""
    base = f"tn{uuid.uuid4().hex[:8]}"
    plan = poly.make_plan("node", base)
    yield plan, poly.run_script(CMD, plan.to_json(), tmp_path_factory.mktemp("node"), redis_url)
    asyncio.run(poly.delete_prefix(redis_url, base))


def test_node_events_match_the_python_sdk(
    node_run: tuple[poly.Plan, poly.Run], redis_url: str
) -> None:
    plan, run = node_run
    checked = poly.compare_run(plan, run, redis_url)
    assert checked.events == 1000
    assert checked.errors == 13  # every version-domain and envelope error, as Python raises it
    print(  # noqa: T201 - the measurement
        f"node: {checked.events} events published in {run.elapsed_s:.2f} s (process included), "
        f"{checked.identical_payload_bytes} payloads byte-identical to Python's"
    )


async def test_node_events_apply_to_the_same_rows_as_python_events(
    node_run: tuple[poly.Plan, poly.Run], shop: Shop
) -> None:
    theirs, ours = await poly.apply_both(node_run[0], shop)
    assert theirs == ours
    assert len(theirs["customers"]) > 50
    assert len(theirs["items"]) > 50
    assert ("customers", "big1", False, 7) in theirs["state"]  # a reference event, re-read


def test_node_spool_while_redis_is_down_then_drained_in_order(
    node_package: Path, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    poly.check_spool_then_drain(CMD, redis_url, redis_prefix, tmp_path)


async def test_python_drains_a_node_spool_and_node_drains_a_python_spool(
    node_package: Path, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    await poly.check_cross_drain(CMD, redis_url, redis_prefix, tmp_path)


def test_node_rides_out_an_outage_and_queues_new_events_behind_the_spool(
    node_package: Path, redis_prefix: str, tmp_path: Path
) -> None:
    poly.check_outage(CMD, redis_prefix, tmp_path)


def test_ext_vector_refuses_what_is_no_float32(node_package: Path) -> None:
    """`ext.vector` (byte-for-byte pymongo's float32 vectors: the contract plan holds them)
    throws on what a vector column could not take, instead of sending NaN or infinity."""
    script = (
        "import { ext } from './src/index.js';"
        f"console.log(ext.vector({poly.VECTOR_SAMPLE}).$binary.base64);"
        "for (const v of [['a'], [1e39], [NaN], [1, Infinity]]) {"
        "  try { ext.vector(v); console.log('sent'); } catch (e) { console.log(e.name); } }"
    )
    poly.check_ext_vector(["node", "--input-type=module", "-e", script], node_package)
