"""Word lists for the astro generator: names, places, signs, cards and text fragments.

Deliberately multilingual (Latin with diacritics, CJK, Cyrillic, Arabic, Devanagari,
Hangul, Greek) and full of emoji, including ZWJ sequences and variation selectors,
because those are the strings that break encoders, collations and length checks.
"""

from __future__ import annotations

import random
from typing import Final

__all__ = [
    "CARDS",
    "CITIES",
    "FEED_TAGS",
    "FEED_TITLES",
    "LABELS",
    "MOODS",
    "NAMES",
    "PERSONAS",
    "PLANETS",
    "PROMPTS",
    "SIGNS",
    "STYLES",
    "TIMEZONES",
    "prose",
]

SIGNS: Final = (
    "Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo",
    "Libra", "Scorpio", "Sagittarius", "Capricorn", "Aquarius", "Pisces",
)  # fmt: skip

PLANETS: Final = (
    "Sun", "Moon", "Mercury", "Venus", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune", "Pluto",
)  # fmt: skip

TIMEZONES: Final = (
    "UTC", "Europe/Paris", "Europe/Moscow", "America/New_York", "America/Sao_Paulo",
    "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata", "Asia/Seoul", "Africa/Lagos",
    "Australia/Sydney", "Pacific/Chatham",
)  # fmt: skip

NAMES: Final = (
    "Amélie", "Søren", "Zoë", "李娜", "さくら", "Алёна", "محمد", "प्रिया", "Nguyễn Thị Lan",
    "김지수", "Θάλεια", "José", "Chloé", "Björk", "Ngozi", "Mateo", "Aoife", "Dvořák",
    "Łucja", "Zeynep", "Kalani", "O'Brien", "Anne-Marie", "Jo",
)  # fmt: skip

CITIES: Final = (
    "東京, 日本", "Ciudad de México", "Москва", "القاهرة", "मुंबई", "São Paulo",
    "Reykjavík", "서울", "Αθήνα", "Lagos", "Kraków", "Montréal", "Zürich", "Brooklyn, NY",
)  # fmt: skip

PERSONAS: Final = ("Luna ✨", "Stella", "Orion 🌌", "Mystic Meg", "Sol", "Nyx 🖤", "星見")
STYLES: Final = ("playful", "blunt", "poetic", "gentle", "sassy 💅", "scholarly")

LABELS: Final = (
    "my boyfriend 💕", "bestie", "the situationship 🙃", "Mom", "ex (do not text)",
    "мой парень", "친구", "roommate", "crush 👀", "兄",
)  # fmt: skip

MOODS: Final = (
    "happy", "anxious", "calm", "🥲", "hopeful", "drained", "✨ glowing ✨", "moody 🌧️",
    "enojada", "ruhig",
)  # fmt: skip

FEED_TITLES: Final = (
    "Mercury retrograde survival guide ☿️", "Venus enters Leo 💛", "Full moon in Scorpio 🌕",
    "Your week in three cards 🔮", "Who is texting you back this week", "Saturn says: rest",
    "新月の願いごと", "Eclipse season, explained", "Celebrity synastry: the breakup 💔",
    "Mars square Pluto — pick your battles",
)  # fmt: skip

FEED_TAGS: Final = (
    "mercury-retrograde", "full-moon", "new-moon", "eclipse", "venus", "mars", "saturn-return",
    "tarot", "celebrity", "love", "career", "self-care",
)  # fmt: skip

PROMPTS: Final = (
    "What are you ready to release under this moon? 🌙",
    "Name one thing that surprised you today.",
    "Where did you feel most like yourself this week?",
    "¿Qué te está pidiendo tu cuerpo hoy?",
    "今日いちばん嬉しかったことは？",  # noqa: RUF001 - a Japanese question ends so
    "Write a letter to the version of you from last Mercury retrograde.",
    "What boundary are you proud of?",
)

_SUITS: Final = ("wands", "cups", "swords", "pentacles")
_RANKS: Final = (
    "ace", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "page", "knight", "queen", "king",
)  # fmt: skip
_MAJOR: Final = (
    "the-fool", "the-magician", "the-high-priestess", "the-empress", "the-emperor",
    "the-hierophant", "the-lovers", "the-chariot", "strength", "the-hermit",
    "wheel-of-fortune", "justice", "the-hanged-man", "death", "temperance", "the-devil",
    "the-tower", "the-star", "the-moon", "the-sun", "judgement", "the-world",
)  # fmt: skip
#: the 78 cards of a Rider-Waite deck, as the app's seed data names them
CARDS: Final = tuple(f"major-{i:02d}-{name}" for i, name in enumerate(_MAJOR)) + tuple(
    f"{suit}-{rank}" for suit in _SUITS for rank in _RANKS
)

_FRAGMENTS: Final = (
    "The moon is asking you to slow down.",
    "Today felt heavier than it should have.",
    "I keep thinking about what she said at dinner 🍝.",
    "Venus is in your seventh house, so expect the unexpected in love.",
    "Work was chaos but I held my ground 💪.",
    "Saturn's lesson this month is patience, not punishment.",
    "Нужно больше спать.",
    "今日は静かな一日だった。",
    "هذا الأسبوع كان مليئًا بالمفاجآت.",
    "आज मन शांत था।",
    "Journaling before bed helps, honestly.",
    "Mercury retrograde ate my group chat 😵‍💫.",
    "The Tower reversed: the shake-up is internal.",
    "Called Mom. We laughed about nothing 👩‍👧.",
    "Trine energy — let things be easy for once.",
    "I don't know why, but I feel ✨ lucky ✨.",
    "Your rising sign explains the first impression; your moon explains the rest.",
)


def prose(rng: random.Random, lo: int = 1, hi: int = 4) -> str:
    """A few sentences of app-like text in mixed scripts."""
    return " ".join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(lo, hi)))
