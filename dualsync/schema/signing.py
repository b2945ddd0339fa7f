"""HMAC-SHA256 signatures over the canonical envelope, identical in every publisher language.

Canonical form: the envelope's string fields except `sig`, sorted by name, each written
as `name=value`, joined with `\\n`, UTF-8 encoded. The payload is signed as the exact
JSON string that was published, so no re-serialisation can break a signature.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = ["canonical_bytes", "sign_fields", "verify_fields"]


def canonical_bytes(fields: Mapping[str, str]) -> bytes:
    """The bytes that are signed: sorted `name=value` lines, `sig` excluded."""
    return "\n".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "sig").encode()


def sign_fields(fields: Mapping[str, str], key: bytes) -> str:
    """Hex HMAC-SHA256 of the canonical envelope."""
    return hmac.new(key, canonical_bytes(fields), hashlib.sha256).hexdigest()


def verify_fields(fields: Mapping[str, str], key: bytes) -> bool:
    """Constant-time check of `fields['sig']`."""
    sig = fields.get("sig")
    return sig is not None and hmac.compare_digest(sig, sign_fields(fields, key))
