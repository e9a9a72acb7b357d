"""Prompts for generating APAR fine-tuning answers: templates x topics, fixed order.

About 70% invite structured answers (tips, steps, comparisons, pros and cons, stages, ideas)
that the conversion can fork; the rest ask for short facts or one-paragraph definitions so
the model also keeps answering plainly. None is a Vicuna benchmark question (the test set).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

logger = logging.getLogger(__name__)


class Prompt(NamedTuple):
    text: str
    structured: bool  # invites a list-shaped answer


_ACTIVITIES = (
    "learning to play the guitar",
    "starting a vegetable garden",
    "training a new puppy",
    "preparing for a job interview",
    "planning a long road trip",
    "baking sourdough bread",
    "running a first marathon",
    "setting up a small home office",
    "writing a cover letter",
    "learning a new language as an adult",
    "caring for houseplants",
    "saving money on groceries",
    "hosting a dinner party",
    "moving to a new city",
    "starting a podcast",
    "painting a room",
    "keeping a journal",
    "packing for a camping trip",
    "teaching a child to ride a bike",
    "decluttering a closet",
    "giving a wedding toast",
    "brewing coffee at home",
    "studying for a final exam",
    "renovating a small bathroom",
)
_ACTIVITY_TEMPLATES = (
    "What are some practical tips for {}?",
    "List the key steps for {}.",
    "What mistakes do beginners often make when {}, and how can they avoid them?",
)

_CHOICES = (
    "owning an electric car",
    "renting a home instead of buying one",
    "working a four-day week",
    "homeschooling children",
    "living in a small town",
    "using a standing desk",
    "freelancing full time",
    "taking a gap year before university",
    "adopting an older dog",
    "living without a car in a big city",
    "buying a used phone",
    "joining a gym instead of exercising at home",
    "growing herbs at home",
    "learning to code through a bootcamp",
    "installing solar panels on a house",
    "traveling solo",
)
_CHOICE_TEMPLATES = (
    "What are the pros and cons of {}?",
    "I am thinking about {}. Walk me through the main arguments for and against it.",
)

_PAIRS = (
    ("tea", "coffee"),
    ("cats", "dogs as pets"),
    ("trains", "planes for travel within Europe"),
    ("hiking boots", "trail runners"),
    ("e-books", "printed books"),
    ("renting a car", "using public transit on vacation"),
    ("yoga", "pilates"),
    ("gas stoves", "induction cooktops"),
    ("a laptop", "a desktop computer for a student"),
    ("running", "cycling for fitness"),
    ("watercolor", "acrylic paint for beginners"),
    ("a savings account", "a certificate of deposit"),
    ("composting at home", "city food-waste collection"),
    ("baking with butter", "baking with oil"),
)
_PAIR_TEMPLATES = (
    "Compare {} and {}. How do they differ?",
    "How do {} and {} differ in cost, convenience and quality?",
)

_PROCESSES = (
    "the water cycle",
    "photosynthesis",
    "the formation of a hurricane",
    "cheese making",
    "the life cycle of a butterfly",
    "how a bill becomes law",
    "beer brewing",
    "the recycling of aluminum cans",
    "the growth of a coral reef",
    "how a heat pump warms a house",
    "paper making from wood",
    "human digestion",
    "chocolate production from cacao beans",
    "the formation of a volcano",
    "composting",
)
_PROCESS_TEMPLATES = (
    "Explain {} step by step.",
    "Describe the main stages of {}.",
    "What factors affect {}?",
)

_OCCASIONS = (
    "a rainy weekend with kids",
    "a tenth birthday party",
    "a team-building afternoon at the office",
    "a budget-friendly date night",
    "a middle school science fair project",
    "a small bakery's social media posts",
    "a neighborhood cleanup day",
    "a retirement gift for a teacher",
    "a themed dinner with friends",
    "a snowy day indoors",
    "a short story about the sea",
    "a family reunion",
    "a fundraiser for a local library",
    "a first visit to a new country",
)
_OCCASION_TEMPLATES = (
    "Suggest some creative ideas for {}.",
    "Give me a list of ideas for {}, with a sentence on each.",
)

_HABITS = (
    "regular stretching",
    "learning to cook",
    "reading before bed",
    "volunteering",
    "taking public transportation",
    "learning a second language",
    "keeping a monthly budget",
    "walking meetings",
    "gardening",
    "drinking enough water",
    "getting up early",
    "limiting social media use",
)
_HABIT_TEMPLATES = ("What are the benefits of {}?",)

_TERMS = (
    "a haiku",
    "inflation",
    "a sonnet",
    "an isotope",
    "a metaphor",
    "compound interest",
    "a watershed",
    "an heirloom tomato",
    "a tariff",
    "a prime number",
    "a peninsula",
    "a catalyst",
    "an ecosystem",
    "a mortgage",
    "an allergy",
    "a fossil",
    "a glacier",
    "a dialect",
    "a constellation",
    "an opera",
    "a solstice",
    "a budget deficit",
    "a palindrome",
    "a sundial",
    "a lighthouse",
)
_TERM_TEMPLATES = (
    "What is {}? Answer in one or two sentences.",
    "Define {} briefly.",
    "In one short paragraph, explain what {} is.",
)

_FACTS = (
    "What is the capital of Canada?",
    "Who wrote Pride and Prejudice?",
    "How many legs does a spider have?",
    "Which planet is closest to the Sun?",
    "What language is spoken in Brazil?",
    "What is the largest ocean on Earth?",
    "Who painted the Mona Lisa?",
    "What gas do plants absorb from the air?",
    "In which country are the pyramids of Giza?",
    "What is the chemical symbol for gold?",
    "How many continents are there?",
    "What is the tallest animal?",
    "Which instrument has 88 keys?",
    "What is the main ingredient of guacamole?",
    "Who was the first person to walk on the Moon?",
    "What is the longest river in Africa?",
    "Which organ pumps blood through the body?",
    "What color do you get by mixing blue and yellow?",
    "How many days are in a leap year?",
    "What currency is used in Japan?",
)


def build_prompts() -> tuple[Prompt, ...]:
    """All prompts, structured ones first, each group template-major in a fixed order."""
    structured = [
        *_fill(_ACTIVITY_TEMPLATES, _ACTIVITIES),
        *_fill(_CHOICE_TEMPLATES, _CHOICES),
        *(t.format(a, b) for t in _PAIR_TEMPLATES for a, b in _PAIRS),
        *_fill(_PROCESS_TEMPLATES, _PROCESSES),
        *_fill(_OCCASION_TEMPLATES, _OCCASIONS),
        *_fill(_HABIT_TEMPLATES, _HABITS),
    ]
    plain = [*_fill(_TERM_TEMPLATES, _TERMS), *_FACTS]
    return tuple(
        [Prompt(_capitalize(t), True) for t in structured]
        + [Prompt(_capitalize(t), False) for t in plain]
    )


def _fill(templates: tuple[str, ...], topics: tuple[str, ...]) -> list[str]:
    return [template.format(topic) for template in templates for topic in topics]


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


PROMPTS: tuple[Prompt, ...] = build_prompts()
