"""Errors of the contract and mapping layer; all permanent (retrying the same input cannot help)."""

from __future__ import annotations

from dualsync.errors import PermanentError


class EnvelopeError(PermanentError):
    """A stream entry is not a valid change event.

    `reason` is the dead-letter code (`invalid_envelope`, `invalid_json`, `oversized`,
    `nul_byte`, `bad_signature`); `field` names the offending envelope field. The
    message never repeats payload values (they may hold secrets).
    """

    def __init__(self, message: str, *, field: str, reason: str = "invalid_envelope") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = reason


class SignatureError(EnvelopeError):
    """The event's HMAC does not verify with its source's key (or is missing when required)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="sig", reason="bad_signature")
