"""Generated English training text: templates filled from word lists, seeded."""

from __future__ import annotations

import random

NAMES = "Anna Ben Carlos Diana Ethan Fiona George Hannah Ivan Julia Kevin Laura Mike Nora Oscar Paula Quinn Rosa Sam \
Tina Victor Wendy Zoe Peter Martha Lucas Grace Henry Olivia".split()
NOUNS = "dog cat house river garden window teacher doctor car train bottle apple table mountain city village \
letter phone computer picture song forest bridge ocean island kitchen engine pencil bicycle student farmer \
market shadow thunder butterfly elephant question answer morning evening journey problem library museum \
camera blanket pocket rabbit kettle ladder wizard orange violin tomato puzzle hammer castle dragon feather \
planet rocket signal weather message holiday breakfast sandwich umbrella jacket".split()
ADJECTIVES = "small big quiet loud happy sad bright dark old young quick slow warm cold strange simple \
beautiful heavy gentle famous hungry sleepy curious careful purple yellow ancient modern friendly nervous \
silver golden tiny enormous rough smooth".split()
VERBS_PAST = "found painted opened carried watched visited cleaned fixed bought sold heard noticed followed \
borrowed pushed pulled remembered ignored discovered described measured delivered repaired collected".split()
VERBS_ING = "reading writing singing walking running cooking sleeping swimming waiting working laughing \
thinking dancing climbing drawing building traveling whispering".split()
PLACES = "in the park|near the station|at the old farm|under the bridge|behind the school|on the quiet beach|\
inside the museum|across the street|by the river|at the top of the hill|in the kitchen|outside the library".split("|")
TIMES = "yesterday|this morning|last week|every Sunday|after dinner|before sunrise|at noon|on Monday|\
in the spring|tonight|later today|three years ago".split("|")
ADVERBS = "quickly slowly carefully happily quietly suddenly finally easily rarely always never often".split()

TEMPLATES = [
    "{name} {past} the {adj} {noun} {place}.",
    "The {adj} {noun} was {ing} {place} {time}.",
    "Did {name} really see a {adj} {noun} {time}?",
    "{time_cap}, {name} and {name2} {past} a {noun}.",
    "We {adverb} {past} the {noun}, but the {noun2} was {adj}.",
    "Why is the {noun} so {adj} {time}?",
    "{name} likes {ing}, and {name2} prefers {ing2}.",
    "Please bring the {adj} {noun} to the {noun2}.",
    "I think the {noun} is {adj}, don't you?",
    "After {ing} {place}, {name} {adverb} {past} the {adj} {noun}.",
    "There are {count} {noun}s and {count2} {adj} {noun2}s {place}.",
    "{name} said that the {noun} {past} the {noun2} {time}!",
    "Is the {noun} {adj} or {adj2}?",
    "My {noun} is {adj}.",
    "Look at that {adj} {noun}!",
]
COUNTS = "two three four five six seven eight nine ten twelve twenty forty".split()


def sentence(rng: random.Random) -> str:
    """One sentence from a random template."""
    time = rng.choice(TIMES)
    return rng.choice(TEMPLATES).format(
        name=rng.choice(NAMES), name2=rng.choice(NAMES), noun=rng.choice(NOUNS), noun2=rng.choice(NOUNS),
        adj=rng.choice(ADJECTIVES), adj2=rng.choice(ADJECTIVES), past=rng.choice(VERBS_PAST),
        ing=rng.choice(VERBS_ING), ing2=rng.choice(VERBS_ING), place=rng.choice(PLACES), time=time,
        time_cap=time[0].upper() + time[1:], adverb=rng.choice(ADVERBS), count=rng.choice(COUNTS),
        count2=rng.choice(COUNTS),
    )


def sentences(count: int, seed: int) -> list[str]:
    """``count`` distinct sentences (seeded)."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        found[sentence(rng)] = None
    return list(found)
