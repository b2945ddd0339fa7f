"""Scratch databases on a server: the demo's, the benchmarks', some tests'."""

from __future__ import annotations

import psycopg
from psycopg import sql

__all__ = ["database_url", "drop_database", "fresh_database"]


def database_url(server_url: str, name: str) -> str:
    """`server_url` with its database set to `name`."""
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo("", **info)


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name` if it exists, closing its sessions."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database `name` on the server; return its URL."""
    drop_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return database_url(server_url, name)
