"""Word lists for the dovvy generator: dive destinations and sites, content pages, chat lines.

DovvyBuddy is a dive-travel assistant, so the vocabulary is the dive world's own: agency
levels (OW, AOW, Rescue), site names in the local language (Spanish, Portuguese, Thai,
Japanese, Korean, Icelandic), and divers chatting in several languages with emoji. Those
strings exercise encoders, jsonb and text columns; none of it is lorem ipsum.
"""

from __future__ import annotations

import random
from typing import Final

__all__ = [
    "AGENCIES",
    "ANSWERS",
    "CONTENT",
    "COURSES",
    "DESTINATIONS",
    "HANDLES",
    "INTERESTS",
    "LEVELS",
    "MARINE_LIFE",
    "NAMES",
    "QUESTIONS",
    "SECTIONS",
    "blurb",
    "chunk",
]

#: (file slug, name, country, region, sites) as the content team named the destination files
DESTINATIONS: Final = (
    ("cozumel-mexico", "Cozumel", "Mexico", "Caribbean",
     ("Palancar Gardens", "Santa Rosa Wall", "Columbia Deep")),
    ("playa-del-carmen-mexico", "Playa del Carmen", "México", "Riviera Maya",
     ("Cenote Dos Ojos", "Cenote Angelita 🌫️", "Tortugas")),
    ("bonaire", "Bonaire", "Caribbean Netherlands", "Caribbean", ("Salt Pier", "1000 Steps")),
    ("roatan-honduras", "Roatán", "Honduras", "Bay Islands", ("Mary's Place", "Hole in the Wall")),
    ("koh-tao-thailand", "Koh Tao", "Thailand", "Gulf of Thailand",
     ("Chumphon Pinnacle", "Sail Rock", "Hin Daeng (หินแดง)")),
    ("tubbataha-philippines", "Tubbataha", "Philippines", "Sulu Sea",
     ("Jessie Beazley", "Amos Rock")),
    ("moalboal-philippines", "Moalboal", "Philippines", "Visayas",
     ("Pescador Island — sardine run 🐟", "Panagsama Beach")),
    ("raja-ampat-indonesia", "Raja Ampat", "Indonesia", "West Papua",
     ("Cape Kri", "Manta Sandy 🐠", "Blue Magic")),
    ("nusa-penida-indonesia", "Nusa Penida", "Indonesia", "Bali",
     ("Manta Point", "Crystal Bay")),
    ("sipadan-malaysia", "Sipadan", "Malaysia", "Borneo", ("Barracuda Point", "Turtle Cavern 🐢")),
    ("okinawa-japan", "沖縄 Okinawa", "Japan", "Ryukyu Islands",
     ("Manza Dreamhole 真栄田岬", "青の洞窟 Blue Cave", "Yonaguni Monument 与那国")),
    ("jeju-south-korea", "제주도 Jeju", "South Korea", "Korea Strait",
     ("문섬 Munseom", "범섬 Beomseom")),
    ("dahab-egypt", "Dahab", "Egypt", "Red Sea", ("Blue Hole", "The Canyon", "Lighthouse Reef")),
    ("silfra-iceland", "Þingvellir (Silfra)", "Iceland", "North Atlantic",
     ("Silfra Fissure 🧊", "Davíðsgjá")),
    ("fernando-de-noronha-brazil", "Fernando de Noronha", "Brasil", "South Atlantic",
     ("Baía dos Golfinhos 🐬", "Pedras Secas")),
    ("galapagos-ecuador", "Galápagos", "Ecuador", "Pacific", ("Darwin's Arch", "Wolf Island")),
    ("palau", "Palau", "Palau", "Micronesia", ("Blue Corner 🦈", "German Channel")),
    ("red-sea-north-egypt", "Red Sea North", "Egypt", "Red Sea",
     ("SS Thistlegorm 🚢", "Ras Mohammed — Shark & Yolanda Reef")),
)  # fmt: skip

_SITE_LINES: Final = (
    "A gentle drift along coral pinnacles; expect turtles and eagle rays.",
    "Wall dive that drops past 40 m — watch your depth and your air.",
    "Strong currents on the outgoing tide: reef hook recommended 🪝.",
    "Shallow, sheltered and perfect for a first ocean dive after certification.",
    "Visibility often beyond 30 m; bring a torch for the swim-throughs.",
    "Corrientes fuertes en la punta norte; sólo con guía local.",
    "Muck diving at its best: frogfish, mimic octopus and flamboyant cuttlefish 🐙.",
    "ปะการังอ่อนสวยงาม และมีฉลามวาฬผ่านมาบางฤดู",
    "冬はザトウクジラの声が聞こえることもあります🐋。",
    "Água a 26 °C o ano todo, golfinhos-rotadores quase todas as manhãs.",
    "Between two tectonic plates: 2 °C glacial water, drysuit certification required.",
)

MARINE_LIFE: Final = (
    "hawksbill turtle", "whale shark", "manta ray", "eagle ray", "reef shark", "moray eel",
    "frogfish", "nudibranch", "barracuda", "hammerhead", "pygmy seahorse", "sardines",
)  # fmt: skip

AGENCIES: Final = ("PADI", "SSI", "NAUI", "CMAS", "SDI", "BSAC")
#: the plan's certification levels, as stored in the site files
LEVELS: Final = ("OW", "AOW", "Rescue")
COURSES: Final = (
    "Open Water Diver", "Advanced Open Water", "Rescue Diver", "Enriched Air Nitrox",
    "Deep Diver", "Divemaster", "Drysuit Diver", "Discover Scuba Diving",
)  # fmt: skip
INTERESTS: Final = (
    "macro", "wrecks", "sharks", "night dives", "photography 📷", "drift", "cenotes",
    "whale sharks", "liveaboard", "reef conservation", "freediving",
)  # fmt: skip

NAMES: Final = (
    "María José Pérez", "Søren Kierkegaard", "Zoë O'Neill", "李娜", "さくら 田中",
    "Nguyễn Thị Lan", "김지수", "Jean-Étienne Dubois", "Ana Lúcia Gonçalves", "Björn Þórsson",
    "Ayşe Yılmaz", "Kalani Akana", "Chloé", "Mateo Rodríguez",  # noqa: RUF001 - Turkish dotless i
)  # fmt: skip

HANDLES: Final = (
    "bubbles", "nemo.fan", "reefwalker", "mantalover", "deep_blue", "buceo.mx", "umi.no.hoshi",
    "scubasteve", "driftqueen",
)  # fmt: skip

#: content pages (relative to the content root) grouped by top-level folder = topic
CONTENT: Final = (
    "certifications/padi-open-water.md", "certifications/padi-advanced-open-water.md",
    "certifications/ssi-open-water.md", "certifications/rescue-diver.md",
    "certifications/nitrox.md", "destinations/cozumel.md", "destinations/raja-ampat.md",
    "destinations/okinawa.md", "destinations/dahab.md", "destinations/silfra.md",
    "safety/equalization.md", "safety/decompression-illness.md", "safety/flying-after-diving.md",
    "safety/currents.md", "marine-life/sharks.md", "marine-life/nudibranchs.md",
    "marine-life/turtles.md", "gear/wetsuit-vs-drysuit.md", "gear/dive-computers.md",
    "faq/medical-questionnaire.md", "faq/booking.md",
)  # fmt: skip

SECTIONS: Final = (
    "Overview", "Prerequisites", "What you'll learn", "Best time to go", "Depth limits",
    "Costs", "Safety notes", "Getting there", "FAQ",
)  # fmt: skip

_CHUNKS: Final = {
    "certifications": (
        "The Open Water Diver course certifies you to dive to 18 m with a buddy.",
        "Prerequisites: age 10+, able to swim 200 m and float for 10 minutes.",
        "Advanced Open Water adds deep and navigation dives and raises the limit to 30 m.",
        "Rescue Diver teaches self-rescue, stress recognition and emergency management.",
        "Nitrox (EANx) extends no-decompression limits; analyse every cylinder yourself.",
    ),
    "destinations": (
        "Cozumel's drift dives along Palancar and Santa Rosa walls are world famous.",
        "Raja Ampat holds the highest recorded marine biodiversity on Earth 🐠.",
        "沖縄の海は透明度が高く、初心者から上級者まで楽しめます。",
        "Dahab's Blue Hole is deep and unforgiving: stay within your training.",
        "Silfra: visibility over 100 m in glacial meltwater between two continents 🧊.",
        "La mejor época para Cozumel es de diciembre a abril, con el agua a 26 °C.",
    ),
    "safety": (
        "Equalize early and often: every metre of the first ten, before you feel pressure.",
        "Wait at least 18 hours before flying after repetitive dives.",
        "Symptoms of DCI can appear up to 24 hours after a dive; seek oxygen and help.",
        "In a down-current, swim along the reef towards the shallows, never against it.",
        "Nunca bucees solo: planifica la inmersión y bucea tu plan.",
    ),
    "marine-life": (
        "Reef sharks are curious but rarely aggressive; keep calm and stay low.",
        "Nudibranchs carry their gills on their back — look for them on hydroids 🐌.",
        "Never touch turtles; approach from the side and give them room to breathe 🐢.",
        "ジンベエザメは世界最大の魚ですが、プランクトンしか食べません。",
    ),
    "gear": (
        "A 3 mm wetsuit suits 27 °C and above; below 10 °C a drysuit is the norm.",
        "Dive computers track nitrogen loading; don't share one between dives.",
        "Rent a computer for your first trips and buy one once you know what you like.",
    ),
    "faq": (
        "Answer the medical questionnaire honestly; a yes needs a physician's sign-off.",
        "Bookings are confirmed by the dive shop, not by DovvyBuddy.",
        "¿Puedo bucear con lentes de contacto? Sí, las blandas suelen ir bien.",
    ),
}

QUESTIONS: Final = (
    "Can I dive Cozumel with just my Open Water? 🤔",
    "What's the best month for whale sharks?",
    "I haven't dived in 3 years — do I need a refresher?",
    "¿Cuántas inmersiones necesito para Raja Ampat?",
    "沖縄で初心者におすすめのポイントは？",  # noqa: RUF001 - a Japanese question ends so
    "Is a 5 mm wetsuit enough for Silfra? 🥶",
    "How long should I wait before flying home?",
    "제주도에서 다이빙하기 좋은 계절은 언제인가요?",
)
ANSWERS: Final = (
    "Yes — most Cozumel sites are fine for OW divers, but the walls need buoyancy control.",
    "Whale sharks pass through between March and June; plan a few days of flexibility 🐋.",
    "After a long break, a refresher (ReActivate/Scuba Review) is strongly recommended.",
    "Para Raja Ampat se recomiendan al menos 50 inmersiones registradas y AOW.",
    "真栄田岬の青の洞窟は初心者にも人気です。",
    "No: Silfra is 2 °C all year and requires a drysuit certification 🧊.",
    "Wait at least 18 hours after multiple dives, 12 after a single no-stop dive.",
    "6월부터 10월까지 수온이 높아 다이빙하기 좋습니다 🤿.",
)


def blurb(rng: random.Random) -> str:
    """A dive-site description: one to three sentences."""
    return " ".join(rng.sample(_SITE_LINES, k=rng.randint(1, 3)))


def chunk(rng: random.Random, topic: str) -> str:
    """A chunk of a content page of `topic`: two to four sentences of that topic."""
    lines = _CHUNKS[topic]
    return " ".join(rng.sample(lines, k=min(len(lines), rng.randint(2, 4))))
