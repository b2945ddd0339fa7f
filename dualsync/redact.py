"""Secret redaction shared by logs, dead letters, drift reports and exceptions.

A field is secret when its name looks like a credential (token, password, secret,
api key, authorization, signature) or when a mapping marks it `secret`; mappings
pass their extra names to `redact_mapping(..., extra=...)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, TypeVar

REDACTED = "***redacted***"

_SECRET_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|authorization|auth[_-]?key|private[_-]?key|"
    r"credential|cookie|session[_-]?key|signing[_-]?key|^sig$)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@", re.IGNORECASE
)

M = TypeVar("M", bound=MutableMapping[str, Any])


def is_secret_name(name: str, extra: Iterable[str] = ()) -> bool:
    """True when a field name is a credential by its look or listed in `extra`."""
    return name in set(extra) or bool(_SECRET_NAME.search(name))


def redact_url(url: str) -> str:
    """Hide the password of a URL (`redis://:pw@host` -> `redis://:***@host`)."""
    return _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", url)


def redact_value(value: Any, extra: frozenset[str] = frozenset()) -> Any:
    """Redact secrets inside nested dicts and lists; URLs in strings lose their password."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if is_secret_name(str(k), extra) else redact_value(v, extra))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v, extra) for v in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def redact_mapping(data: M, extra: Iterable[str] = ()) -> M:
    """Redact secret fields of a mutable mapping in place and return it."""
    names = frozenset(extra)
    for k in list(data.keys()):
        data[k] = REDACTED if is_secret_name(str(k), names) else redact_value(data[k], names)
    return data
