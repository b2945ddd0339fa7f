"""Word lists for the tzurot generator: personalities, their display names, bot copy, tokens.

Tzurot relays Discord messages to AI personalities. A personality's full name is a
slug the upstream profile service accepts (the bot's validator allows ASCII letters,
digits, spaces, `-`, `_` and `.`), while its display name comes back from the profile
service as the creator typed it: accents, Hebrew, CJK, Greek, cuneiform (outside the
Basic Multilingual Plane) and emoji, including ZWJ sequences and variation selectors.
Those are the strings that break encoders and `VARCHAR(n)` length checks.
"""

from __future__ import annotations

import base64
import random
from typing import Final

__all__ = ["ERROR_MESSAGES", "PERSONAS", "SUFFIXES", "avatar_url", "token"]

#: (slug stem of the full name, display name the profile service returns)
PERSONAS: Final = (
    ("lilith", "Lilith 🖤"), ("hecate", "Hécate"), ("li-bai", "李白"),
    ("sakura", "さくら 🌸"), ("koschei", "Кощей Бессмертный"), ("okami", "Ōkami"),
    ("nyx", "Nyx 🌙"), ("baphomet", "Baphomet ⛧"), ("aphrodite", "Ἀφροδίτη"),
    ("ereshkigal", "Ereshkigal 𒀭"), ("albert-einstein", "Albert Einstein"),
    ("ada-lovelace", "Ada Lovelace 💡"), ("zoe", "Zoë ✨"), ("loki", "Loki 🐍"),
    ("seraphina", "Seraphína"), ("kitsune", "狐 Kitsune"), ("bard", "Bartholomew the Bard 🎻"),
    ("marie-curie", "Marie Skłodowska-Curie ☢️"), ("cthulhu", "Cthulhu 🐙"),
    ("tzel-shani", "צל שני"), ("amaterasu", "天照 Amaterasu ☀️"), ("freya", "Freyja ᚠ"),
    ("dr.frankenstein", "Dr. Frankenstein ⚡"), ("captain_nemo", "Capitaine Némo ⚓"),
    ("moon-rabbit", "달토끼 🐇"), ("the-oracle", "The Oracle 👁️‍🗨️"),
    ("sherlock", "Sherlock Holmes 🔍"), ("mothman", "Mothman 🦋"), ("jinn", "جنّي"),
    ("pixel", "Pixel 👩🏽‍💻"),
)  # fmt: skip

#: what follows the stem in a full name: profile-service handles, versions, tags
SUFFIXES: Final = (
    "", "", "tzel-shani", "the-wise", "v2", "nsfw", "classic", "ai", "official", "rp",
)  # fmt: skip

#: a personality's custom error message (the bot shows it when the API call fails)
ERROR_MESSAGES: Final = (
    "*the candle gutters out* ||Something went wrong, try again in a moment.||",
    "Hmm… my thoughts got tangled 🧶. Ask me again?",
    "*static crackles* — the connection to the other side is weak tonight. ⚡",
    "Désolée, je n'ai pas pu répondre. Réessaie plus tard 🙏",
    "エラーが発生しました。もう一度お試しください。",
    "I seem to have lost my train of thought. 🚂💨",
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(rng: random.Random) -> str:
    """An opaque bearer token as the auth service's `/nonce` exchange returns it."""
    return _b64(rng.randbytes(36))


def avatar_url(rng: random.Random, channel: str, message: str, stem: str) -> str:
    """A Discord CDN attachment URL (with its signed expiry parameters), where avatars live."""
    sig = f"ex={rng.randbytes(4).hex()}&is={rng.randbytes(4).hex()}&hm={rng.randbytes(32).hex()}&"
    return f"https://cdn.discordapp.com/attachments/{channel}/{message}/{stem}.png?{sig}"
