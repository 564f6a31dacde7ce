"""Wikitext to plain prose paragraphs, with mwparserfromhell's parse tree rather than regexes.

What a reader sees as running text survives (link labels, bold/italic contents, entities);
everything else goes: templates (infoboxes, citations, navboxes), references, tables, files and
images, categories, interlanguage links, math, code, comments, list items and the trailing
reference sections. Headings become paragraph breaks.
"""
import re
from typing import Iterable, List, Optional

import mwparserfromhell
from mwparserfromhell import nodes as mw_nodes

# Tags whose contents are not prose. `table` also covers wiki tables ({| ... |}).
DROPPED_TAGS = frozenset({
    "ref", "references", "table", "math", "chem", "ce", "code", "pre", "source", "syntaxhighlight",
    "score", "hiero", "timeline", "gallery", "imagemap", "graph", "mapframe", "maplink", "templatedata",
    "templatestyles", "inputbox", "categorytree", "noinclude", "includeonly", "nowiki", "style", "script",
})
# Markers of lists (*, #) and definition lists (;, :). List items are mostly link lists and
# navigation, not sentences, so their lines are dropped.
LIST_TAGS = frozenset({"li", "dt", "dd"})
LINE_BREAK_TAGS = frozenset({"br", "p", "hr"})
DROPPED_LINK_NAMESPACES = frozenset({"file", "image", "media", "category"})
# Wikipedia's appendix sections (MOS:ORDER puts them last): from the first one on, an article holds
# only citations and link lists.
TRAILING_SECTIONS = frozenset({
    "references", "external links", "see also", "further reading", "notes", "bibliography",
    "sources", "citations", "footnotes", "notes and references", "references and notes", "works cited",
})
DISAMBIGUATION_TEMPLATES = frozenset({
    "disambiguation", "disambig", "dab", "disamb", "hndis", "geodis", "numberdis", "letter-numbercombdisambig",
    "mountainindex", "roaddis", "schooldis", "shipindex", "surname", "given name", "set index article",
})
_INTERLANGUAGE_PREFIX = re.compile(r"^[a-z]{2,3}(-[a-z]+)*$")
_LINE_START_MARK = "\x00"
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_SPACE_RUN = re.compile(r"[ \t\u00a0\u2009\u200b]+")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?)\]])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[]) +")
# Parentheses emptied by dropped templates, e.g. "Paris ({{IPA|...}}; {{lang|fr|...}})".
_EMPTY_PARENS = re.compile(r"\(\s*[,;:]?\s*([,;:]\s*)*\)")
_LEADING_PUNCT = re.compile(r"^[,;:.\s]+")
_DISAMBIGUATION_TEMPLATE = re.compile(r"\{\{\s*([^|}]+?)\s*[|}]")
# Removed before parsing: mwparserfromhell gives up on a region after malformed markup (an
# unclosed template or quote) and hands it back as text, references included. References are
# also the bulk of many articles' markup, so removing them first makes parsing faster.
_COMMENT = re.compile(r"<!--.*?(-->|$)", re.S)
_SELF_CLOSING_REF = re.compile(r"<ref\b[^>]*?/\s*>", re.I)
_REF = re.compile(r"<ref\b[^>]*>.*?</ref\s*>", re.I | re.S)
_LEFTOVER_REF = re.compile(r"<ref\b.*$", re.I)
_LEFTOVER_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*\b[^<>]*>")
# Unparsed wiki markup left in a line means the parser gave up there; such lines are dropped.
_LEFTOVER_MARKUP = ("[[", "]]", "{{", "}}", "{|", "|}")


def _link_namespace(title: str) -> Optional[str]:
  if ":" not in title:
    return None
  return title.split(":", 1)[0].strip().lower()


def _render_link(link: mw_nodes.Wikilink) -> str:
  title = str(link.title).strip()
  if title.startswith(":"):  # [[:Category:X]] is a visible link to the page, not a tag.
    title = title[1:]
  else:
    namespace = _link_namespace(title)
    if namespace in DROPPED_LINK_NAMESPACES:
      return ""
    if namespace is not None and link.text is None and _INTERLANGUAGE_PREFIX.match(namespace):
      return ""
  if link.text is not None:
    return _render(link.text.nodes)
  return title.split("#", 1)[0] if not title.startswith("#") else title[1:]


def _render_tag(tag: mw_nodes.Tag) -> str:
  name = str(tag.tag).strip().lower()
  if name in DROPPED_TAGS:
    return ""
  if name in LIST_TAGS:
    return _LINE_START_MARK
  if name in LINE_BREAK_TAGS:
    return "\n"
  if tag.self_closing or tag.contents is None:
    return ""
  return _render(tag.contents.nodes)


def _render(node_list: Iterable[mw_nodes.Node]) -> str:
  parts: List[str] = []
  for node in node_list:
    if isinstance(node, mw_nodes.Text):
      parts.append(str(node.value))
    elif isinstance(node, mw_nodes.Wikilink):
      parts.append(_render_link(node))
    elif isinstance(node, mw_nodes.Tag):
      parts.append(_render_tag(node))
    elif isinstance(node, mw_nodes.ExternalLink):
      if node.title is not None:
        parts.append(_render(node.title.nodes))
    elif isinstance(node, mw_nodes.HTMLEntity):
      parts.append(node.normalize())
    elif isinstance(node, mw_nodes.Heading):
      title = _render(node.title.nodes).strip().lower()
      if title in TRAILING_SECTIONS:
        break
      parts.append("\n\n")
    # Templates, arguments ({{{x}}}) and comments carry no prose.
  return "".join(parts)


def strip_references(wikitext: str) -> str:
  wikitext = _COMMENT.sub("", wikitext)
  wikitext = _SELF_CLOSING_REF.sub("", wikitext)
  return _REF.sub("", wikitext)


def clean_line(line: str) -> str:
  line = _LEFTOVER_REF.sub("", line)
  line = _LEFTOVER_TAG.sub("", line)
  line = _MAGIC_WORD.sub("", line)
  line = _SPACE_RUN.sub(" ", line)
  line = _EMPTY_PARENS.sub("", line)
  line = _SPACE_RUN.sub(" ", line)
  line = _SPACE_BEFORE_PUNCT.sub(r"\1", line)
  line = _SPACE_AFTER_OPEN.sub(r"\1", line)
  line = _LEADING_PUNCT.sub("", line)
  return line.strip()


def to_paragraphs(wikitext: str, min_words: int = 3) -> List[str]:
  """Prose paragraphs of an article, in order; a paragraph is one line of rendered text."""
  rendered = _render(mwparserfromhell.parse(strip_references(wikitext)).nodes)
  paragraphs = []
  for raw in rendered.split("\n"):
    if raw.lstrip().startswith(_LINE_START_MARK):
      continue
    if any(mark in raw for mark in _LEFTOVER_MARKUP):
      continue
    line = clean_line(raw)
    # Leftovers of dropped markup ("thumb|", lone "|}") and one-word captions are not prose.
    if len(line.split()) < min_words or line.startswith(("|", "{", "!")):
      continue
    paragraphs.append(line)
  return paragraphs


def is_disambiguation(title: str, wikitext: str) -> bool:
  if title.endswith("(disambiguation)"):
    return True
  for match in _DISAMBIGUATION_TEMPLATE.finditer(wikitext):
    if match.group(1).strip().lower() in DISAMBIGUATION_TEMPLATES:
      return True
  return False
