"""Wikitext cleaning: prose survives, markup of every kind does not."""
from data_prep import wikitext

HARD_ARTICLE = """{{Infobox person
| name = Ada {{nowrap|Lovelace}}
| image = {{#if:x|Ada.jpg}}
}}
'''Ada Lovelace''' ({{IPA|ˈeɪdə}}; {{lang|fr|Ada}}) was an [[England|English]] [[mathematician]].<ref name="a">{{cite book|title=Ada}}</ref> She wrote the first ''published'' program.<ref name="a"/>
[[File:Ada Lovelace portrait.jpg|thumb|A portrait of [[Ada Lovelace]] by {{artist|Chalon}}.]]
{| class="wikitable"
! Year !! Event
|-
| 1843 || Notes published
|}
== Early life ==
Her father was [[Lord Byron]], the poet &amp; peer.<!-- hidden comment --> She studied <math>x^2 + y^2</math> geometry with [http://example.org tutors].
* [[Charles Babbage]] list item
[[Category:English mathematicians]]
[[de:Ada Lovelace]]
== References ==
Some citation prose that is not article text at all.
"""


def test_keeps_prose_and_link_labels():
  paragraphs = wikitext.to_paragraphs(HARD_ARTICLE)
  assert paragraphs[0] == "Ada Lovelace was an English mathematician. She wrote the first published program."
  assert paragraphs[1] == "Her father was Lord Byron, the poet & peer. She studied geometry with tutors."


def test_drops_templates_refs_tables_files_categories_interlanguage_math_lists_and_appendix():
  text = "\n".join(wikitext.to_paragraphs(HARD_ARTICLE))
  for gone in ("{{", "}}", "[[", "]]", "<ref", "cite", "Infobox", "wikitable", "1843", "portrait", "Chalon",
               "Category", "English mathematicians", "de:", "x^2", "hidden comment", "list item", "citation prose",
               "http", "IPA", "lang"):
    assert gone not in text, gone


def test_headings_break_paragraphs():
  paragraphs = wikitext.to_paragraphs("First part of the text here.\n== Section ==\nSecond part of the text here.")
  assert paragraphs == ["First part of the text here.", "Second part of the text here."]


def test_nested_templates_and_unbalanced_markup_leave_no_markup():
  article = "Text {{a|{{b|{{c}}}}|d}} stays here.\nBroken {{unclosed template swallows the line.\nLast line of prose."
  paragraphs = wikitext.to_paragraphs(article)
  assert paragraphs[0] == "Text stays here."
  assert paragraphs[-1] == "Last line of prose."
  assert not any("{{" in p for p in paragraphs)


def test_visible_category_link_keeps_its_label():
  assert wikitext.to_paragraphs("See [[:Category:Birds|the bird list]] for more.") == ["See the bird list for more."]


def test_short_fragments_are_not_paragraphs():
  assert wikitext.to_paragraphs("thumb\n\nTwo words\n\nThree words here") == ["Three words here"]


def test_disambiguation_by_template_or_title():
  assert wikitext.is_disambiguation("Mercury", "'''Mercury''' may refer to:\n{{disambiguation}}")
  assert wikitext.is_disambiguation("Mercury", "{{ Dab |planets}}")
  assert wikitext.is_disambiguation("Mercury (disambiguation)", "text")
  assert not wikitext.is_disambiguation("Mercury (planet)", "{{Infobox planet}} Mercury is a planet.")
