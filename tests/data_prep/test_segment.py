"""Sentence splitting: real boundaries split, abbreviations, initials and decimals do not."""
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
