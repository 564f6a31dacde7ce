"""Sentence splitting: real boundaries split, abbreviations, initials and decimals do not."""
import random

import pytest

from data_prep import segment


@pytest.mark.parametrize("text, expected", [
    ("It rained. Then it stopped.", ["It rained.", "Then it stopped."]),
    ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
    ("The U.S. Army arrived. It was late.", ["The U.S. Army arrived.", "It was late."]),
    ("Fruit, e.g. Apples, is healthy. Yes.", ["Fruit, e.g. Apples, is healthy.", "Yes."]),
    ("J. R. R. Tolkien wrote it. He was British.", ["J. R. R. Tolkien wrote it.", "He was British."]),
    ("Pi is 3.14159 roughly. E is 2.718.", ["Pi is 3.14159 roughly.", "E is 2.718."]),
    ("Prices rose 2.5% in 2001. 2002 was worse.", ["Prices rose 2.5% in 2001.", "2002 was worse."]),
    ("Really? Yes! Of course.", ["Really?", "Yes!", "Of course."]),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
    ("It ended (finally). Next came more.", ["It ended (finally).", "Next came more."]),
    ("See Fig. 3 for details. No. 5 is missing.", ["See Fig. 3 for details.", "No. 5 is missing."]),
    ("Wait... Then go.", ["Wait...", "Then go."]),
    ("at 5 p.m. on Monday it closed.", ["at 5 p.m. on Monday it closed."]),
    ("no terminal punctuation", ["no terminal punctuation"]),
    ("   ", []),
])
def test_split_sentences(text, expected):
  assert segment.split_sentences(text) == expected


def test_paragraph_breaks_end_sentences_and_order_is_kept():
  paragraphs = ["First paragraph without a full stop", "Second one. Has two."]
  assert segment.split_document(paragraphs) == ["First paragraph without a full stop", "Second one.", "Has two."]


@pytest.mark.parametrize("paragraphs", [
    [],
    ["", "   ", "\t"],
    ["One sentence.", "Another one.", "no stop", ""],
    ["Ends with a stop. ", "  Starts spaced. Then more.  "],
    ["Mr.", "Smith came. He left.", "U.S.", "Army. Yes"],  # Abbreviations right at paragraph ends.
    ["Word.\x00Next one.", "Null \x00 bytes. Inside."],  # The joining character inside a paragraph.
    ["A.\u2028B. C", "\u201cQuoted.\u201d Next. \u00abFr\u00e9nch.\u00bb Fin"],  # Unicode whitespace and quotes.
    ["Wait...   \"Then\" go! 3 more? (Yes.) [No.] ok"],
    ["x" * 5000 + ". " + "Y" * 5000 + "."],  # Very long sentences.
])
def test_split_document_equals_split_sentences_on_every_paragraph(paragraphs):
  expected = [s for paragraph in paragraphs for s in segment.split_sentences(paragraph)]
  assert segment.split_document(paragraphs) == expected


def test_split_document_equals_split_sentences_on_random_punctuation_soup():
  rng = random.Random(0)
  pieces = ["a", "B", "Mr", "e.g", "U.S", "J", "3", ".5", " ", "  ", "\t", "\n", "\u2028", "\u00a0", "\x00", ".", "!",
            "?", "...", '"', "'", ")", "(", "]", "[", "\u201d", "\u201c", "\u2019", "\u00bb", "\u00ab", "\u00e9"]
  for _ in range(3000):
    paragraphs = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 20))) for _ in range(rng.randint(0, 5))]
    assert segment.split_document(paragraphs) == [s for p in paragraphs for s in segment.split_sentences(p)]
