"""Secret redaction shared by logs, dead letters, drift reports and exceptions.

A field is secret when its name looks like a credential (token, password, secret,
api key, authorization, signature) or when a mapping marks it `secret`; mappings
pass their extra names to `redact_mapping(..., extra=...)`, and their secret paths
(`profile.phone`) to `redact_document`. `scrub` removes known secret values from text
(error messages that quote a value), where no field name is left to go by.
"""

from __future__ import annotations

import json
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


def redact_document(
    value: Any,
    *,
    names: Iterable[str] = (),
    paths: Iterable[str] = (),
    found: list[str] | None = None,
) -> Any:
    """A copy of a JSON document with its secrets replaced by `REDACTED`.

    Secrets are: every key, at any depth, whose name looks like a credential
    (`is_secret_name`) or is one of `names`; and every dotted path of `paths`
    (`profile.phone`), followed from the root, where an array on the way applies the
    rest of the path to each of its elements (`contacts.pin` reaches the `pin` of every
    contact). Strings holding a URL lose its password. When `found` is given, the
    replaced values (their scalar leaves, as text) are appended to it, so that error
    text quoting them can be scrubbed (`scrub`).
    """
    extra = frozenset(names)
    out = _redact_names(value, extra, found)
    for path in paths:
        parts = [p for p in path.split(".") if p]
        if parts:
            _redact_path(out, parts, found)
    return out


def _redact_names(value: Any, extra: frozenset[str], found: list[str] | None) -> Any:
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if is_secret_name(str(k), extra):
                _leaves(v, found)
                out[k] = REDACTED
            else:
                out[k] = _redact_names(v, extra, found)
        return out
    if isinstance(value, list | tuple):
        return [_redact_names(v, extra, found) for v in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def _redact_path(node: Any, parts: list[str], found: list[str] | None) -> None:
    if isinstance(node, list):
        for item in node:
            _redact_path(item, parts, found)
        return
    if not isinstance(node, dict) or parts[0] not in node:
        return
    if len(parts) == 1:
        if node[parts[0]] != REDACTED:
            _leaves(node[parts[0]], found)
            node[parts[0]] = REDACTED
        return
    _redact_path(node[parts[0]], parts[1:], found)


def _leaves(value: Any, found: list[str] | None) -> None:
    if found is None:
        return
    if isinstance(value, Mapping):
        for v in value.values():
            _leaves(v, found)
    elif isinstance(value, list | tuple):
        for v in value:
            _leaves(v, found)
    elif isinstance(value, str):
        found.append(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        found.append(str(value))


#: values shorter than this are not scrubbed from text (they would garble it, and are
#: no secret worth the name)
MIN_SCRUBBED = 4
#: a run of this many characters of a secret (or all of a shorter one) is enough to start
#: scrubbing: error text may quote a value truncated (`'abcdefgh...'`)
_SCRUB_HEAD = 8


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of a secret value replaced by `REDACTED`.

    Also catches the value as `repr` and JSON escape it (quotes, backslashes, non-ASCII)
    and a quoted prefix of it (messages truncate long values): from the first
    `_SCRUB_HEAD` characters of a secret, the match extends as far as the text follows it.
    """
    forms: set[str] = set()
    for s in secrets:
        if len(s) >= MIN_SCRUBBED:
            forms.update((s, repr(s)[1:-1], json.dumps(s)[1:-1]))
    for form in sorted(forms, key=len, reverse=True):
        text = _scrub_one(text, form)
    return text


def _scrub_one(text: str, secret: str) -> str:
    head = secret[:_SCRUB_HEAD]
    start = text.find(head)
    if start < 0:
        return text
    out: list[str] = []
    pos = 0
    while start >= 0:
        end = start + len(head)
        while end - start < len(secret) and end < len(text) and text[end] == secret[end - start]:
            end += 1
        out += (text[pos:start], REDACTED)
        pos = end
        start = text.find(head, pos)
    out.append(text[pos:])
    return "".join(out)
