"""Normalising names and dates before they are blind-indexed, so one person written two ways
("Zoë  O'Brien, 02/01/2009" and "zoe obrien 2009-01-02") gives one index.

Names: Unicode NFKC, case-folding, common transliterations (ß→ss, ø→o, æ→ae, ...), accents
removed from Latin letters, and everything that is not a letter, digit or combining mark of
another script (spaces, hyphens, apostrophes, dots) dropped. Non-Latin names keep their script:
"Дмитрий" and "дмитрий" index alike, but are never transliterated to Latin, since one person's
name has many Latin spellings and a wrong one would link two people.

Dates: ISO 8601 (2009-01-02), numeric day first (02/01/2009, 2.1.2009, 02-01-2009: the
European and UK order used by the panels; a month-first "01/02/2009" is read as 1 February,
never guessed), and day month-name year (2 Jan 2009, 2 January 2009).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

# Letters that NFKD does not take apart into a base letter and an accent.
_TRANSLITERATIONS = str.maketrans(
    {
        "ß": "ss",
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ł": "l",
        "\u0131": "i",  # dotless i
        "ħ": "h",
        "ŋ": "n",
    }
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DAY_FIRST = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_DAY_MONTH_NAME = re.compile(r"^(\d{1,2})\s+([a-z]+)\.?,?\s+(\d{4})$")


def normalise_name(text: str) -> str:
    """The matching form of a name (see the module docstring). May be empty."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_TRANSLITERATIONS)
    kept: list[str] = []
    previous_latin = False
    for char in unicodedata.normalize("NFKD", folded):
        category = unicodedata.category(char)
        if category == "Mn" and previous_latin:
            continue  # An accent on a Latin letter: "ë" matches "e".
        if category[0] in "LNM":
            kept.append(char)
            if category[0] == "L":
                previous_latin = "LATIN" in unicodedata.name(char, "")
    return unicodedata.normalize("NFC", "".join(kept))


def parse_date(value: object) -> date:
    """A date of birth from a `date` or a string in one of the accepted forms.

    Raises ValueError naming the accepted forms (never repeating the value).
    """
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("date must be a string")
    text = " ".join(unicodedata.normalize("NFKC", value).casefold().split())
    try:
        if match := _ISO.match(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _DAY_FIRST.match(text):
            return date(int(match[3]), int(match[2]), int(match[1]))
        if (match := _DAY_MONTH_NAME.match(text)) and match[2] in _MONTHS:
            return date(int(match[3]), _MONTHS[match[2]], int(match[1]))
    except ValueError:
        raise ValueError("date is not a valid calendar date") from None
    raise ValueError(
        "date must be YYYY-MM-DD, DD/MM/YYYY (day first) or D Month YYYY (e.g. 2 Jan 2009)"
    )
