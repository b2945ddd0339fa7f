"""Key strategies: a legacy key (string) -> the target primary key, deterministically.

Deterministic keys need no lookup table and give the same ids on every re-run, so a
reference (`ref`) to another entity is translated with that entity's strategy alone.
A key that does not fit its strategy raises `ValueError` without quoting the key: the
caller names it where it is not secret (a `ref` column may be).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any, Final, Literal

__all__ = ["KEY_PG_TYPES", "Strategy", "cuid_for", "key_function", "uuid5_for"]

Strategy = Literal["text", "uuid", "uuid5", "cuid", "int"]
KEY_PG_TYPES: Final[dict[str, str]] = {
    "text": "text",
    "uuid": "uuid",
    "uuid5": "uuid",
    "cuid": "text",
    "int": "bigint",
}
#: uuid5(NAMESPACE_URL, "https://dualsync.dev/keys"): the root of every uuid5 key
DUALSYNC_NS: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://dualsync.dev/keys")
_B36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


_NS_BYTES: Final = DUALSYNC_NS.bytes
# uuid.uuid5's last step, `UUID(bytes=..., version=5)`, re-checks its arguments and sets
# the RFC 4122 variant and version bits: done here on the int, and the UUID is built as
# `UUID.__init__` builds it (its `int`, and `is_safe` unknown). Half the cost of uuid5
# (a child row of a document costs one, its parent another).
_CLEAR: Final = ~((0xC000 << 48) | (0xF000 << 64))
_SET: Final = (0x8000 << 48) | (5 << 76)
_UNKNOWN: Final = uuid.SafeUUID.unknown
_new = object.__new__
_set = object.__setattr__


def uuid5_for(namespace: str, key: str) -> uuid.UUID:
    """The UUID of a legacy key in a namespace: `uuid.uuid5(DUALSYNC_NS, namespace\x1fkey)`."""
    name = bytes(f"{namespace}\x1f{key}", "utf-8")
    digest = hashlib.sha1(_NS_BYTES + name, usedforsecurity=False).digest()
    out: uuid.UUID = _new(uuid.UUID)
    _set(out, "int", (int.from_bytes(digest[:16], "big") & _CLEAR) | _SET)
    _set(out, "is_safe", _UNKNOWN)
    return out


def cuid_for(namespace: str, key: str) -> str:
    """A cuid-shaped id (`c` + 24 base36 chars) derived from sha256(namespace, key)."""
    n = int.from_bytes(hashlib.sha256(f"{namespace}\x1f{key}".encode()).digest(), "big")
    chars = []
    for _ in range(24):
        n, r = divmod(n, 36)
        chars.append(_B36[r])
    return "c" + "".join(chars)


def _int(key: str) -> int:
    text = key.strip()
    if not text or not (text.lstrip("-").isascii() and text.lstrip("-").isdigit()):
        raise ValueError("is not an integer (key strategy int)")
    return int(text)


def _uuid(key: str) -> uuid.UUID:
    try:
        return uuid.UUID(key)
    except ValueError:
        raise ValueError("is not a UUID (key strategy uuid)") from None


def key_function(strategy: Strategy, namespace: str) -> Callable[[str], Any]:
    """The translation function of one strategy and namespace."""
    if strategy == "text":
        return str
    if strategy == "uuid":
        return _uuid
    if strategy == "uuid5":
        return lambda k: uuid5_for(namespace, k)
    if strategy == "cuid":
        return lambda k: cuid_for(namespace, k)
    return _int
