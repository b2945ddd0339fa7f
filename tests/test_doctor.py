"""`dualsync doctor`'s pgvector probe: real distances and an HNSW build, not pg_extension."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dualsync.ops.doctor import PROBE_DIMS, Level, check_cpu, probe_vector


def test_probe_passes_on_the_test_server(pg_url: str, require_vector: None) -> None:
    with psycopg.connect(pg_url) as conn:
        check = probe_vector(conn, "x")
        assert check.level is Level.OK, check.detail
        assert f"{PROBE_DIMS}-dim" in check.detail
        assert "HNSW" in check.detail
        # rolled back: the probe leaves nothing behind
        assert conn.execute("select to_regclass('ds_probe')").fetchone() == (None,)


def test_a_backend_that_dies_during_the_probe_is_a_failure_with_the_fix(
    pg_url: str, require_vector: None
) -> None:
    """What a SIGILL inside vector.so looks like to a client: the connection is gone
    mid-statement. Another session terminates the probing backend as it runs."""
    with psycopg.connect(pg_url) as conn, psycopg.connect(pg_url, autocommit=True) as killer:
        pid = conn.info.backend_pid
        killer.execute("select pg_terminate_backend(%s)", [pid])
        check = probe_vector(conn)
    assert check.level is Level.FAIL
    assert "backend died" in check.detail
    assert "embedded" in check.detail  # says what to do next


def test_cpu_check_names_missing_x86_64_v3_features(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse sse2 avx\n")
    check = check_cpu(info)
    if check.detail.startswith("x86_64"):
        assert check.level is Level.WARN
        assert "avx2" in check.detail
        assert "x86-64-v3" in check.detail
    else:
        pytest.skip(f"not an x86-64 machine ({check.detail}); the feature check does not apply")
    info.write_text("flags : avx2 fma f16c avx512f\n")
    ok = check_cpu(info)
    assert ok.level is Level.OK
    assert "with AVX-512" in ok.detail
