"""Normalisation of names and dates before blind indexing."""

from __future__ import annotations

from datetime import date

import pytest

from hub.matching import normalise_name, parse_date


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Zoë", "zoe"),
        ("  O'Brien ", "obrien"),
        ("o brien", "obrien"),
        ("Jean-Luc", "jeanluc"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
        ("Søren", "soren"),
        ("Æbelø", "aebelo"),
        ("Œuvre", "oeuvre"),
        ("Łukasz", "lukasz"),
        ("Đorđe", "dorde"),
        ("José María", "josemaria"),
        ("\uff3a\uff4f\uff45", "zoe"),  # full-width forms fold under NFKC
        ("Zoe\u0308", "zoe"),  # a decomposed diaeresis
    ],
)
def test_latin_names_normalise(written: str, expected: str) -> None:
    assert normalise_name(written) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Дмитрий", "ДМИТРИЙ"),
        ("Дмитрий", " Дми-трий "),
        ("王小明", "王 小明"),
        ("محمد", "محمد"),
        ("Νίκος", "ΝΊΚΟΣ"),
        ("नमस्ते", "नमस्ते"),
    ],
)
def test_non_latin_names_index_consistently_in_their_own_script(one: str, other: str) -> None:
    assert normalise_name(one) == normalise_name(other)
    assert normalise_name(one) != ""


def test_non_latin_names_are_not_transliterated_to_latin() -> None:
    assert normalise_name("Дмитрий") == "дмитрий"
    assert normalise_name("Дмитрий") != normalise_name("Dmitriy")
    # The breve of "й" is part of the Cyrillic letter and is kept.
    assert normalise_name("й") != normalise_name("и")


@pytest.mark.parametrize(
    "written",
    [
        "2009-01-02",
        "02/01/2009",
        "2/1/2009",
        "02.01.2009",
        "02-01-2009",
        "2 Jan 2009",
        "2 January 2009",
        " 2  jan. 2009 ",
        date(2009, 1, 2),
    ],
)
def test_dates_in_several_forms(written: object) -> None:
    assert parse_date(written) == date(2009, 1, 2)


def test_numeric_dates_are_read_day_first() -> None:
    assert parse_date("01/02/2009") == date(2009, 2, 1)


@pytest.mark.parametrize("written", ["2009/01/02", "Jan 2 2009", "yesterday", "02/01/09"])
def test_unknown_date_forms_are_refused(written: str) -> None:
    with pytest.raises(ValueError, match="date must be YYYY-MM-DD, DD/MM/YYYY"):
        parse_date(written)


def test_impossible_dates_are_refused() -> None:
    with pytest.raises(ValueError, match="not a valid calendar date"):
        parse_date("31/02/2009")
    with pytest.raises(ValueError, match="date must be a string"):
        parse_date(20090102)
