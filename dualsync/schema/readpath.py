"""The read-path mode machine, per entity: `legacy` -> `shadow` -> `postgres`, and back to
`legacy` from anywhere. The contract every read-path client (Python, Node, PHP) follows.

- `legacy`: the app reads the legacy store (the start, and where a rollback lands);
- `shadow`: the app still returns the legacy read, and also reads Postgres to compare;
- `postgres`: the app reads Postgres; dual-write goes on, so a rollback loses nothing.

Skipping `shadow` is refused: Postgres is read for real only after it has been compared
under live traffic. The modes live in Redis (`schema.streams.readpath_key`, a hash entity ->
mode; an absent entity is `legacy`), and each change is published on
`readpath_channel` so every app instance sees it within a second.
"""

from __future__ import annotations

from enum import StrEnum

from dualsync.errors import PermanentError

__all__ = ["IllegalTransitionError", "Mode", "check_transition"]


class Mode(StrEnum):
    """Where an entity's reads go."""

    LEGACY = "legacy"
    SHADOW = "shadow"
    POSTGRES = "postgres"


class IllegalTransitionError(PermanentError):
    """A flip the mode machine does not allow; the message says which step comes next."""

    reason = "illegal_transition"


_FORWARD = {Mode.LEGACY: Mode.SHADOW, Mode.SHADOW: Mode.POSTGRES}


def check_transition(entity: str, current: Mode, target: Mode) -> None:
    """Raise `IllegalTransitionError` unless `current` -> `target` is allowed."""
    if target is current:
        raise IllegalTransitionError(f"{entity} reads from {current} already")
    if target is Mode.LEGACY:
        return  # a rollback is always allowed
    if _FORWARD.get(current) is not target:
        nxt = _FORWARD.get(current)
        hint = f"flip it to {nxt} first" if nxt is not None else "roll it back to legacy first"
        raise IllegalTransitionError(
            f"{entity} cannot go from {current} to {target}: {hint} "
            f"(the path is legacy -> shadow -> postgres; rollback goes to legacy from anywhere)"
        )
