"""Word lists for the panamia generator: Miami names, neighbourhoods, listing copy, tokens.

Pana MIA is a Miami community: names and copy mix English, Spanish, Haitian Creole and
Portuguese, with diacritics, a few non-Latin scripts and emoji. Token shapes imitate the
real providers (Google `ya29.` access tokens and JWT id tokens, GitHub `gho_` tokens) so
redaction is exercised on realistic credentials.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Mapping
from typing import Final

__all__ = [
    "HANDLES",
    "NAMES",
    "NEIGHBORHOODS",
    "PETS",
    "TITLES",
    "blurb",
    "jwt",
    "token",
]

NAMES: Final = (
    "María José Pérez", "Jean-Baptiste Étienne", "Nguyễn Văn An", "Zoë Smith", "李伟",
    "Ana Lúcia Gonçalves", "Renée O'Connor", "Dmitri Волков", "Ayşe Yılmaz",  # noqa: RUF001 - Turkish dotless i, on purpose
    "Kwame Mensah",
    "Guadalupe Núñez", "Wiselande Joseph", "João", "Björn", "Fatima الزهراء", "Ximena",
)  # fmt: skip

HANDLES: Final = (
    "mofongo_lover", "cafecito", "gatitos305", "wynwood.walls", "pana", "dj_tropi",
    "josé_miami", "sabor", "kreyòl_kid", "beachdog",
)  # fmt: skip

NEIGHBORHOODS: Final = (
    "Little Havana", "Wynwood", "Little Haiti", "Hialeah", "Coconut Grove", "Allapattah",
    "Doral", "Kendall", "Overtown", "Brickell",
)  # fmt: skip

TITLES: Final = (
    "Cuidado de perros en {hood} 🐶", "Cat sitting in {hood} 🐈",
    "Pet sitting in {hood} — yard + AC",
    "Gardiennage d'animaux à {hood}", "Dog walking, {hood} 🌴", "Okipe chen ak chat nan {hood}",
    "Hospedagem para pets em {hood} 🐾", "Bird & reptile sitter ({hood}) 🦜",
)  # fmt: skip

_BLURBS: Final = (
    "Fenced yard, two walks a day, and lots of cafecito-fueled cuddles ☕.",
    "Tengo experiencia con perros grandes y medicamentos.",
    "Mwen renmen bèt! Kay la gen lakou.",
    "Photos every evening 📸. No more than two guests at a time.",
    "Hurricane plan ready 🌀 — generator on site.",
    "Falo português e espanhol.",
    "Quiet apartment, perfect for senior cats 🐈‍⬛.",
)

PETS: Final = (
    ("Canela 🐕", "dog"), ("Mango", "cat"), ("Señor Bigotes", "cat"), ("Kiki", "bird"),
    ("Tostón", "dog"), ("Lua", "dog"), ("Pikachu 🦎", "reptile"),
)  # fmt: skip


def blurb(rng: random.Random) -> str:
    """Two or three sentences of listing copy."""
    return " ".join(rng.sample(_BLURBS, k=rng.randint(2, 3)))


def token(rng: random.Random, prefix: str, nbytes: int) -> str:
    """An opaque provider token: `prefix` + url-safe base64 of `nbytes` random bytes."""
    return prefix + base64.urlsafe_b64encode(rng.randbytes(nbytes)).rstrip(b"=").decode()


def _part(obj: Mapping[str, object]) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(rng: random.Random, sub: str, email: str, iat: int) -> str:
    """A JWT-shaped OIDC id token (random signature; never verified)."""
    header = {"alg": "RS256", "kid": rng.randbytes(20).hex(), "typ": "JWT"}
    claims = {"iss": "https://accounts.google.com", "sub": sub, "email": email, "iat": iat}
    return f"{_part(header)}.{_part(claims)}.{token(rng, '', 256)}"
