"""Realistic legacy MongoDB documents of Pana MIA, deterministic from a seed.

The assumed legacy shape: the NextAuth MongoDB adapter's collections (its snake_case
token fields kept as the provider returned them) and Mongoose collections for the
pet-sitting MVP, whose check-then-insert booking code is what the roadmap replaces.
`_id` ObjectIds, BSON dates (millisecond precision, UTC), Decimal128 money, and fields
the new schema drops (`__v`, `photos`, `location`, `pets`):

    users (nextauth_users)        {_id, name?, email, emailVerified?, image?, screenname?,
                                   role, createdAt, updatedAt, __v}
    accounts (nextauth_accounts)  {_id, userId, type: "oauth", provider, providerAccountId,
                                   access_token, refresh_token?, expires_at?, token_type,
                                   scope, id_token?, session_state?}
    sessions (nextauth_sessions)  {_id, sessionToken, userId, expires}
    verification_tokens           {_id, identifier, token (sha-256 hex, as NextAuth stores it),
                                   expires}
    listings                      {_id, sitterId, title, description?, pricePerDay: Decimal128,
                                   available, photos: [url], location: {neighborhood, geo},
                                   createdAt, updatedAt}
    bookings                      {_id, listingId, ownerId, sitterId, startDate, endDate,
                                   status: pending|confirmed|completed|cancelled,
                                   totalPrice: Decimal128, pets: [{name, species}],
                                   createdAt, updatedAt}

`?` marks fields sometimes null and sometimes missing. `role` is always present: the app
sets it at sign-up, and dualsync maps a missing field to NULL, never to a default.
Emails, screennames, (provider, providerAccountId), session and verification tokens are
unique, as the Postgres constraints require. Bookings of one listing never overlap unless
one of them is cancelled (a cancelled booking frees its slot, and the next booking often
takes it), so the exclusion constraint holds for generated data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from bson import Decimal128, ObjectId

from examples._legacy import LegacyDoc, ObjectIds, Unique, between, mongo_documents, optional
from examples.panamia import _corpus as c

__all__ = ["ENTITIES", "LegacyDoc", "generate"]

START: Final = dt.datetime(2022, 6, 1, tzinfo=dt.UTC)
END: Final = dt.datetime(2025, 1, 9, tzinfo=dt.UTC)
#: legacy collections in the order they are yielded (parents first)
ENTITIES: Final = ("users", "accounts", "sessions", "verification_tokens", "listings", "bookings")
#: midnight in Miami (EST), the instant the app stores for a booked day
_MIDNIGHT_MIAMI: Final = dt.timedelta(hours=5)
_STATUSES: Final = ("pending", "confirmed", "completed", "cancelled")


@dataclass(frozen=True, slots=True)
class _User:
    oid: ObjectId
    email: str
    created: dt.datetime


@dataclass(slots=True)
class _Listing:
    oid: ObjectId
    sitter: ObjectId
    price: Decimal
    created: dt.datetime
    #: the end of the listing's last live booking: the next one starts here or later
    free_from: dt.datetime


class _Panamia:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids = ObjectIds(self.rng)
        self.users: list[_User] = []
        self.sitters: list[_User] = []
        self.listings: list[_Listing] = []
        #: values already taken, for columns under a unique constraint
        self.unique = Unique()

    def opt(self, doc: dict[str, Any], key: str, value: Any, missing: float = 0.1) -> None:
        optional(self.rng, doc, key, value, missing)

    def user(self) -> dict[str, Any]:
        r = self.rng
        at = between(r, START, END - dt.timedelta(days=90))
        i = len(self.users)
        email = (
            f"{r.choice(c.HANDLES)}{i}@{r.choice(('gmail.com', 'panamia.club', 'yahoo.com.mx'))}"
        )
        role = r.choices(("user", "sitter", "admin"), (85, 12, 3))[0]
        doc: dict[str, Any] = {
            "_id": self.ids.mint(at),
            "email": email,
            "role": role,
            "createdAt": at,
        }
        self.opt(doc, "name", r.choice(c.NAMES))
        self.opt(doc, "emailVerified", between(r, at, at + dt.timedelta(days=2)), missing=0.15)
        self.opt(
            doc, "image", f"https://lh3.googleusercontent.com/a/{c.token(r, 'ACg8oc', 30)}=s96-c"
        )
        self.opt(doc, "screenname", f"{r.choice(c.HANDLES)}_{i}")
        doc["updatedAt"] = between(r, at, END)
        doc["__v"] = 0
        user = _User(doc["_id"], email, at)
        self.users.append(user)
        if role == "sitter":
            self.sitters.append(user)
        return doc

    def account(self) -> dict[str, Any]:
        r = self.rng
        user = r.choice(self.users)
        at = between(r, user.created, user.created + dt.timedelta(minutes=5))
        provider = r.choices(("google", "github", "discord"), (6, 3, 1))[0]
        doc: dict[str, Any] = {
            "_id": self.ids.mint(at),
            "userId": user.oid,
            "type": "oauth",
            "provider": provider,
        }
        expires = int(at.timestamp()) + 3599
        if provider == "google":
            sub = self.unique(lambda: f"1{r.randrange(10**20):020d}")
            doc |= {
                "providerAccountId": sub,
                "access_token": c.token(r, "ya29.a0", 120),
                "refresh_token": c.token(r, "1//0", 70),
                "expires_at": expires,
                "token_type": "Bearer",
                "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
                "id_token": c.jwt(r, sub, user.email, int(at.timestamp())),
            }
            self.opt(doc, "session_state", None, missing=0.5)
        elif provider == "github":
            doc |= {
                "providerAccountId": self.unique(lambda: str(r.randrange(10**5, 10**9))),
                "access_token": c.token(r, "gho_", 27),
                "token_type": "bearer",
                "scope": "read:user,user:email",
            }
        else:
            doc |= {
                "providerAccountId": self.unique(lambda: str(r.randrange(10**17, 10**18))),
                "access_token": c.token(r, "", 22),
                "refresh_token": c.token(r, "", 22),
                "expires_at": expires + 604_800 - 3599,
                "token_type": "Bearer",
                "scope": "identify email",
            }
        return doc

    def session(self) -> dict[str, Any]:
        r = self.rng
        user = r.choice(self.users)
        at = between(r, user.created, END)
        token = self.unique(lambda: str(uuid.UUID(int=r.getrandbits(128), version=4)))
        return {
            "_id": self.ids.mint(at),
            "sessionToken": token,
            "userId": user.oid,
            "expires": at + dt.timedelta(days=30),
        }

    def verification_token(self) -> dict[str, Any]:
        r = self.rng
        at = between(r, START, END)
        known = r.random() < 0.7
        identifier = (
            r.choice(self.users).email if known else f"nuevo.vecino{r.randrange(10**6)}@gmail.com"
        )
        token = self.unique(lambda: hashlib.sha256(r.randbytes(32)).hexdigest())
        return {
            "_id": self.ids.mint(at),
            "identifier": identifier,
            "token": token,
            "expires": at + dt.timedelta(hours=24),
        }

    def listing(self) -> dict[str, Any]:
        r = self.rng
        sitter = r.choice(self.sitters or self.users)
        at = between(r, sitter.created, END - dt.timedelta(days=30))
        price = Decimal(f"{r.randint(15, 120)}.{r.choice(('00', '50', '99', '25'))}")
        hood = r.choice(c.NEIGHBORHOODS)
        doc: dict[str, Any] = {
            "_id": self.ids.mint(at),
            "sitterId": sitter.oid,
            "title": r.choice(c.TITLES).format(hood=hood),
            "pricePerDay": Decimal128(price),
            "available": r.random() < 0.85,
            "photos": [
                f"https://cdn.panamia.club/l/{c.token(r, '', 9)}.jpg"
                for _ in range(r.randint(0, 3))
            ],
            "location": {
                "neighborhood": hood,
                "geo": {
                    "type": "Point",
                    "coordinates": [-80.2 - r.random() / 5, 25.7 + r.random() / 5],
                },
            },
            "createdAt": at,
            "updatedAt": between(r, at, END),
        }
        self.opt(doc, "description", c.blurb(r), missing=0.15)
        first_day = (at + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.listings.append(
            _Listing(doc["_id"], sitter.oid, price, at, first_day + _MIDNIGHT_MIAMI)
        )
        return doc

    def booking(self) -> dict[str, Any]:
        r = self.rng
        listing = r.choice(self.listings)
        owners = [
            u for u in r.sample(self.users, k=min(3, len(self.users))) if u.oid != listing.sitter
        ]
        owner = owners[0] if owners else self.users[0]
        start = listing.free_from + dt.timedelta(days=r.choice((0, 0, 1, 2, 3, 5, 8, 13)))
        days = r.randint(1, 14)
        end = start + dt.timedelta(days=days)
        status = r.choices(_STATUSES, (2, 4, 3, 1))[0]
        if status != "cancelled":
            listing.free_from = end
        at = between(r, listing.created, max(listing.created, start - dt.timedelta(hours=1)))
        pets = [{"name": n, "species": s} for n, s in r.sample(c.PETS, k=r.randint(1, 2))]
        return {
            "_id": self.ids.mint(at),
            "listingId": listing.oid,
            "ownerId": owner.oid,
            "sitterId": listing.sitter,
            "startDate": start,
            "endDate": end,
            "status": status,
            "totalPrice": Decimal128(listing.price * days),
            "pets": pets,
            "createdAt": at,
            "updatedAt": between(r, at, max(at, end)),
        }

    def builders(self) -> dict[str, Callable[[], dict[str, Any]]]:
        return {
            "users": self.user,
            "accounts": self.account,
            "sessions": self.session,
            "verification_tokens": self.verification_token,
            "listings": self.listing,
            "bookings": self.booking,
        }


def generate(n_per_entity: int, seed: int = 0) -> Iterator[LegacyDoc]:
    """`n_per_entity` documents of every legacy collection, parents first, from `seed`."""
    yield from mongo_documents(ENTITIES, _Panamia(seed).builders(), n_per_entity)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from examples._stores import generator_main

    sys.exit(generator_main(Path(__file__).parent, generate, None))
