"""Judgment files -> gains (icecat rating / 3; esci E 1, S 0.1, C 0.01, I 0)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ranking import judgment_gain, parse_judgments, read_judgments

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.parametrize("rating, gain", [("100.0", 1.0), ("10.0", 0.1), ("1.0", 0.01),
                                          ("0.0", 0.0), ("100", 1.0), (10, 0.1)])
def test_esci_gains(rating: str | float, gain: float) -> None:
    assert judgment_gain("esci", rating) == gain


@pytest.mark.parametrize("rating, gain", [("0", 0.0), ("1", 1 / 3), ("2", 2 / 3), ("3", 1.0),
                                          ("3.0", 1.0)])
def test_icecat_gains(rating: str, gain: float) -> None:
    assert judgment_gain("icecat", rating) == pytest.approx(gain)


@pytest.mark.parametrize("dataset, rating", [("esci", "50"), ("esci", "E"), ("esci", "nan"),
                                             ("icecat", "4"), ("icecat", "-1"),
                                             ("icecat", ""), ("other", "1")])
def test_bad_ratings(dataset: str, rating: str) -> None:
    with pytest.raises(ValueError):
        judgment_gain(dataset, rating)


def test_parse_esci() -> None:
    text = ("query,asin,rating,esci_label_inferred\n"
            "t towels kitchen,B07NCQWCQS,100.0,E\n"
            "t towels kitchen,B07QLRTGVQ,10.0,S\n"
            " basketball ,B000000001 ,1.0,C\n"
            "basketball,B000000002,0.0,I\n")
    assert parse_judgments(io.StringIO(text), "esci") == {
        "t towels kitchen": {"B07NCQWCQS": 1.0, "B07QLRTGVQ": 0.1},
        "basketball": {"B000000001": 0.01, "B000000002": 0.0},
    }


def test_parse_icecat() -> None:
    text = "query,docid,rating\nlaptop,1229111,0\nlaptop,2060476,3\nusb,77026839,2\n"
    assert parse_judgments(text.splitlines(keepends=True), "icecat") == {
        "laptop": {"1229111": 0.0, "2060476": 1.0}, "usb": {"77026839": pytest.approx(2 / 3)},
    }


def test_parse_errors_name_the_line() -> None:
    with pytest.raises(ValueError, match="lack columns"):
        parse_judgments(io.StringIO("query,docid,rating\n"), "esci")
    with pytest.raises(ValueError, match="line 3: icecat rating"):
        parse_judgments(io.StringIO("query,docid,rating\na,1,3\nb,2,7\n"), "icecat")
    with pytest.raises(ValueError, match="line 3: 'a' / 1 judged twice"):
        parse_judgments(io.StringIO("query,docid,rating\na,1,3\na,1,0\n"), "icecat")
    same_twice = parse_judgments(io.StringIO("query,docid,rating\na,1,3\na,1,3\n"), "icecat")
    assert same_twice == {"a": {"1": 1.0}}
    with pytest.raises(ValueError, match="line 2: empty query"):
        parse_judgments(io.StringIO("query,docid,rating\n,1,3\n"), "icecat")


@pytest.mark.parametrize("dataset, queries", [("esci", 83), ("icecat", 84)])
def test_shared_files_parse(dataset: str, queries: int) -> None:
    path = SHARED / dataset / "judgments.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    judgments = read_judgments(path, dataset)
    assert len(judgments) == queries
    assert all(0.0 <= g <= 1.0 for judged in judgments.values() for g in judged.values())
