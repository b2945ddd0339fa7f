"""`dualsync worker --metrics-port`: a real worker process serves /healthz and /metrics."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from tests.fix_http import free_port, get, wait_status
from tests.fix_shop import Shop, customer, spec


async def test_worker_serves_health_and_metrics(shop: Shop, tmp_path: Path) -> None:
    pub = shop.publisher()
    await pub.publish_many([spec("customers", f"c{i}", customer(i), 1) for i in range(20)])
    await pub.aclose()
    port = free_port()
    log = tmp_path / "worker.log"
    proc = shop.worker_process(log, "--metrics-port", str(port), "--verify-every", "0")
    try:
        status, _ = await wait_status(f"http://127.0.0.1:{port}/healthz", 200, 60)
        assert status == 200, log.read_text()[-3000:]
        for _ in range(100):
            _, text = await get(f"http://127.0.0.1:{port}/metrics")
            if b'dualsync_events_applied_total{entity="customers"} 20.0' in text:
                break
            await asyncio.sleep(0.2)
        assert b'dualsync_events_applied_total{entity="customers"} 20.0' in text
        assert b'dualsync_stream_pending{shard="0"}' in text
    finally:
        proc.terminate()
        code = proc.wait(30)
    assert code == 0, log.read_text()[-3000:]


async def test_metrics_port_in_use_is_one_line_and_non_zero(shop: Shop, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "worker.log"
        proc = shop.worker_process(log, "--metrics-port", str(port), "--verify-every", "0")
        code = await asyncio.to_thread(proc.wait, 60)
    text = log.read_text()
    assert code != 0
    assert f"dualsync: error: cannot serve metrics on 127.0.0.1:{port}" in text, text[-3000:]
    assert "Traceback" not in text
