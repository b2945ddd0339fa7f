"""Word lists for the donna generator: people, chat turns, memories, log lines, clients.

Donna is a personal assistant used in many languages, so chat text mixes Latin with
diacritics, CJK, Cyrillic and right-to-left scripts (Arabic, Hebrew), emoji (including
ZWJ sequences and flags), markdown and multi-line replies: the strings that break
encoders, `varchar(n)` length checks (characters, not bytes) and full-text indexing.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "CITIES",
    "CLIENTS",
    "HANDLES",
    "MEMORIES",
    "MODELS",
    "NAMES",
    "OCCUPATIONS",
    "PROFILES",
    "SYSTEM_PROMPT",
    "TIMEZONES",
    "TURNS",
    "URIS",
    "USER_AGENTS",
]

NAMES: Final = (
    "Zoë Martín", "Łukasz Wiśniewski", "李静", "佐藤 健", "محمد العلي", "נועה כהן",
    "Ngozi Okafor", "Ana Luísa Gonçalves", "Anne-Sophie Müller", "김민준", "Chloé Dubois",
    "Nguyễn Thị Mai", "Siobhán O'Connor", "Priya Raghunathan", "José Ángel Núñez", "Björk",
    "Dmitri Волков", "Jo",
)  # fmt: skip

HANDLES: Final = (
    "zoe.martin", "lukasz.w", "jing.li", "ken.sato", "m.alali", "noa.cohen", "ngozi",
    "analuisa", "annesophie", "minjun.kim", "chloe.d", "mai.nguyen", "siobhan", "priya.r",
)  # fmt: skip

#: (IANA name, minutes east of UTC): zones without daylight saving, so the offset is fixed
TIMEZONES: Final = (
    ("UTC", 0), ("Europe/London", 0), ("Africa/Lagos", 60), ("Asia/Riyadh", 180),
    ("Asia/Dubai", 240), ("Asia/Kolkata", 330), ("Asia/Kathmandu", 345),
    ("Asia/Shanghai", 480), ("Asia/Tokyo", 540), ("America/Sao_Paulo", -180),
    ("America/Bogota", -300), ("Pacific/Marquesas", -570),
)  # fmt: skip

OCCUPATIONS: Final = (
    "nurse", "software engineer", "maître d'hôtel", "freelance illustrator 🎨", "teacher",
    "عاملة في مجال الصحة", "看護師", "founder (stealth) 🚀", "PhD student", "lawyer",
)  # fmt: skip

CITIES: Final = (
    "Lisboa", "Kraków", "大阪", "بيروت", "תל אביב", "São Paulo", "Montréal", "Lagos",
    "Zürich", "Bengaluru", "Ciudad de México", "Brooklyn, NY",
)  # fmt: skip

#: assistant profiles (chat_sessions.profile)
PROFILES: Final = ("general", "business", "coding", "wellness", "travel", "creative")
MODELS: Final = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "claude-3-5-haiku")
CLIENTS: Final = ("web", "ios", "android", "widget")

SYSTEM_PROMPT: Final = (
    "You are Donna, a warm and efficient personal assistant. Answer in the user's language. "
    "Use the memories you are given; never invent appointments."
)

#: (user message, Donna's reply): one chat turn each
TURNS: Final = (
    ("Can you remind me to call the dentist tomorrow at 9?",
     "Done! I'll remind you tomorrow at **9:00** to call the dentist. 🦷"),
    ("¿Qué tengo en el calendario el jueves?",
     "El jueves tienes:\n- 10:00 Reunión con el equipo\n- 13:30 Almuerzo con Carla 🍽️"),
    ("Résume-moi cet e-mail, s'il te plaît 🙏",
     "Voici le résumé :\n1. Le devis est accepté.\n2. La livraison est prévue le 12."),
    ("明日の会議のアジェンダを作ってください",
     "以下がアジェンダです：\n1. 進捗共有\n2. 課題\n3. 次のステップ"),  # noqa: RUF001 - CJK text takes full-width punctuation
    ("帮我写一封请假邮件，说我周五要去看医生。",  # noqa: RUF001 - CJK text takes full-width punctuation
     "好的，这是邮件草稿：\n\n王经理您好，\n我周五需要去看医生，想请一天假。谢谢！"),  # noqa: RUF001 - CJK text takes full-width punctuation
    ("ما هو أفضل وقت للاجتماع مع الفريق هذا الأسبوع؟",
     "أفضل وقت هو الثلاثاء الساعة 11 صباحًا، فالجميع متاح. 📅"),
    ("תזכירי לי לקנות חלב ולחם בדרך הביתה 🥛",
     "הוספתי לרשימה: חלב, לחם. משהו נוסף? 🛒"),
    ("Plan a 3-day trip to Lisbon 🇵🇹 — I hate early flights",
     ("Here's a relaxed plan:\n\n**Day 1** — Alfama, pastéis de nata 🥮\n**Day 2** — Sintra\n"
      "**Day 3** — LX Factory\n\nAll flights after 11:00 ✈️")),
    ("Draft a polite follow-up to my landlord about the broken heater",
     "```\nHi Mr. Patel,\nFollowing up on the heater — could someone come by this week?\n```"),
    ("Wie spät ist es gerade in Tokio?", "In Tokio ist es gerade 22:14 Uhr (JST). 🌙"),
    ("Нужно перенести встречу с Олегом на пятницу",  # noqa: RUF001 - Cyrillic letters in Russian text
     "Перенесла встречу с Олегом на пятницу, 15:00. ✅"),  # noqa: RUF001 - Cyrillic letters in Russian text
    ("remind me: pick up Zoë at 5 👧", "Got it — 17:00, pick up Zoë. I'll ping you at 16:40. 👧🏽"),
    ("what did I tell you about my kitchen project?",
     "You said the kitchen remodel should be finished by May 30 and the budget is €18,000."),
    ("Write a haiku about Monday ☕️",
     "Monday morning —\nthe kettle sighs before I do.\nemails bloom like weeds. ☕️"),
    ("Can you translate 'see you soon' into Korean? 한국어로요",
     "'See you soon' is **곧 봐요** (informal) or **곧 뵙겠습니다** (formal)."),
    ("I'm feeling overwhelmed 😮‍💨 can you help me prioritise?",
     "Let's take it one step at a time 💛 Which of these is due first?"),
    ("Add 'renew passport' to my list",
     "Added 'renew passport' to your list. You now have 3 open tasks."),
    ("ok", "👍"),
)  # fmt: skip

#: memory type -> key -> possible values (any JSON: user_memory.value is jsonb)
MEMORIES: Final[dict[str, dict[str, tuple[Any, ...]]]] = {
    "profile": {
        "occupation": OCCUPATIONS,
        "hometown": CITIES,
        "birthday": ("1990-04-12", "04-12", "1984-11-30"),
        "kids": ([{"name": "Zoë", "age": 7}], [{"name": "Omar", "age": 3}, {"name": "Lina"}], []),
        "partner_name": ("Sam", "علي", "美咲", "Ines"),
    },
    "preferences": {
        "coffee_order": ("flat white, oat milk", "cortado", "早上喝绿茶 🍵"),
        "diet": (["vegetarian"], ["halal"], ["no nuts", "low sodium"], []),
        "meeting_hours": ({"from": "09:30", "to": "16:00"}, {"from": "10:00", "to": "18:30"}),
        "reply_language": ("fr", "es", "ja", "ar", "he"),
        "units": ("metric", "imperial"),
        "café_préféré": ("Café de Flore", "A Brasileira"),
        "emoji_ok": (True, False),
    },
    "context": {
        "current_project": (
            {"name": "Kitchen remodel", "deadline": "2025-05-30", "budget_eur": 18000},
            {"name": "Thèse — chapitre 3", "deadline": None},
        ),
        "travel_plans": ({"city": "Lisboa", "from": "2025-06-02", "nights": 4},),
        "last_topic": ("taxes", "birthday party 🎂", "ضرائب"),
        "open_tasks": (["call dentist", "renew passport"], ["寄快递"], []),
        "snoozed_reminders": (2, 0, 5),
    },
}

USER_AGENTS: Final = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/128.0.0.0 Safari/537.36"
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
    ),
    "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
    "Donna/2.3.1 (iPhone; iOS 17.5; Scale/3.00)",
    "okhttp/4.12.0",
    "curl/8.4.0",
)

#: request URIs; `{chat}` is replaced by a chat id
URIS: Final = (
    "/api/chat.php", "/api/chat.php?chat_id={chat}", "/api/history.php?chat_id={chat}&limit=20",
    "/api/memory.php?type=context", "/api/search.php?q=caf%C3%A9%20pr%C3%A8s%20de%20moi",
    "/api/profile.php", "/index.php?page=settings",
)  # fmt: skip
