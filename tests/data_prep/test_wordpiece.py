"""data_prep.wordpiece gives the ids of tensorflow_text's FastBertTokenizer (tokenization.WordpieceTokenizer), byte for byte."""
import random
import subprocess
import sys

import numpy as np
import pytest

from data_prep import bert_unicode_tables
from data_prep import corpus_readers
from data_prep import wordpiece
from tpu_electra.data import tokenization

PIECES = ["the", "a", "an", "of", "and", "in", "to", "un", "##able", "##s", "##ing", "##ed", "##e", "##a", "##b",
          "##c", "##x", "##xx", "x", "xx", "xxx", "b", "c", "e", "é", "##é", "straße", "##ß", "i", "##i", "ﬁ",
          "fi", "##fi", "##fin", "fin", "中", "国", "##中", ".", ",", "(", ")", "'", "-", "$", "#", "##", "###", "##.",
          "a.b", "..", "é.", "1", "2", "##1", "##2", "12", "٣", "ǆ", "dž", "##ž", "ž", "z", "##z", "ς", "σ", "##σ"]
VOCAB = list(dict.fromkeys(list(tokenization.SPECIAL_TOKENS) + PIECES + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
                           + list("abcdefghijklmnopqrstuvwxyz")))


def reference(vocab, do_lower_case):
  return tokenization.WordpieceTokenizer(vocab, do_lower_case=do_lower_case)


def reference_ids(tokenizer, texts):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  ragged = tokenizer.tokenize_tensor(tf.constant(texts, tf.string))
  return ragged.flat_values.numpy(), ragged.row_lengths().numpy()


def assert_same(vocab, do_lower_case, texts):
  ours = wordpiece.WordpieceTokenizer(vocab, do_lower_case).tokenize_sentences(texts)
  theirs = reference_ids(reference(vocab, do_lower_case), texts)
  np.testing.assert_array_equal(ours[1], theirs[1])
  np.testing.assert_array_equal(ours[0], theirs[0])


def test_unicode_tables_are_what_tensorflow_text_gives_for_every_codepoint():
  # Regenerate with `python -m data_prep.wordpiece > data_prep/bert_unicode_tables.py` when this fails.
  found = wordpiece.reference_tables()
  for name in ("WHITESPACE", "PUNCTUATION", "LOWER_CASE_EXCEPTIONS", "CASED_EXCEPTIONS"):
    assert list(found[name]) == list(getattr(bert_unicode_tables, name)), name


def codepoints_to_try():
  """The Basic Multilingual Plane, both sides of every boundary of the tables, and every 61st codepoint above."""
  chosen = set(range(0x10000)) | set(range(0x10000, 0x110000, 61))
  for table in (bert_unicode_tables.WHITESPACE, bert_unicode_tables.PUNCTUATION,
                bert_unicode_tables.LOWER_CASE_EXCEPTIONS, bert_unicode_tables.CASED_EXCEPTIONS):
    for run in table:
      chosen.update((run[0] - 1, run[0], run[1], run[1] + 1))
  return sorted(c for c in chosen if 0 <= c < 0x110000 and not 0xD800 <= c <= 0xDFFF)


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_codepoints_alone_and_inside_words_give_the_ids_of_fast_bert_tokenizer(do_lower_case):
  # Alone, between letters that a vocab piece continues, doubled after a word, and next to CJK and punctuation.
  texts = [f"{chr(c)} xa{chr(c)}bxx un{chr(c)}able{chr(c)}s 中{chr(c)}." for c in codepoints_to_try()]
  assert_same(VOCAB, do_lower_case, texts)


def random_text(rng):
  alphabet = (list("abcxyzABCXYZ .,'()-$#1é") + ["É", "ß", "ẞ", "ﬁ", "中", "国", "\u00a0", "\u2009", "\u200b", "\u3000",
              "\t", "\r", "\x0b", "\x1c", "\x7f", "\x00", "\u0301", "\u0130", "\u03a3", "ǅ", "Ž", "٣", "\U0001f600",
              "\U000e0041", "\u2028", "\ufeff", "\u00ad", "straße", "unable", "xxx", "##", "\x85"])
  words = []
  for _ in range(rng.randint(0, 12)):
    length = rng.choice([1, 2, 3, 5, 8, 9, 15, 16, 17, 30, 99, 100, 101, 120])
    words.append("".join(rng.choice(alphabet) for _ in range(length)))
  return rng.choice([" ", "  ", "\t", "-", ""]).join(words)


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_random_text_gives_the_ids_of_fast_bert_tokenizer(do_lower_case):
  rng = random.Random(13)
  texts = [random_text(rng) for _ in range(5000)]
  assert_same(VOCAB, do_lower_case, texts)
  # Long words: 100 UTF-8 bytes are a word, 101 are [UNK], whatever the characters.
  assert_same(VOCAB, do_lower_case, ["x" * 100, "x" * 101, "é" * 50, "é" * 51, "xé" * 33 + "x", "xé" * 34, "中" * 200])


def fragment_vocab(sentences, do_lower_case, size=1500):
  """A plausible WordPiece vocab of the text (frequent words, their beginnings and endings, every character), fast."""
  counts = {}
  for sentence in sentences:
    for word in (sentence.lower() if do_lower_case else sentence).split():
      word = word.strip(".,;:()[]\"'")
      counts[word] = counts.get(word, 0) + 1
  frequent = sorted(counts, key=lambda w: (-counts[w], w))[:size]
  pieces = frequent + [w[:4] for w in frequent] + [f"##{w[-3:]}" for w in frequent]
  characters = sorted({c for w in counts for c in w})
  return list(dict.fromkeys(list(tokenization.SPECIAL_TOKENS) + [p for p in pieces if p and p != "##"] + characters
                            + [f"##{c}" for c in characters]))


@pytest.fixture(scope="module")
def wikipedia_sentences(embedded_dump):
  return [p for d in corpus_readers.read_wikipedia_dump(embedded_dump) for p in d.paragraphs]


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_real_wikipedia_sentences_give_the_ids_of_fast_bert_tokenizer(wikipedia_sentences, do_lower_case):
  assert_same(fragment_vocab(wikipedia_sentences, do_lower_case), do_lower_case, wikipedia_sentences)


def test_lines_of_bytes_and_batches_agree_with_sentences():
  tokenizer = wordpiece.WordpieceTokenizer(VOCAB, True)
  sentences = ["The unable xxx.", "", "中国 a-b", "  spaced   out ", "x" * 40, "x" * 40 + " é"]
  ids, lengths = tokenizer.tokenize_text("\n".join(sentences).encode("utf-8"))
  assert lengths.tolist() == [len(tokenizer.tokenize(s)) for s in sentences]
  assert ids.tolist() == [i for s in sentences for i in tokenizer.tokenize(s)]
  assert tokenizer.tokenize_batch(sentences) == [tokenizer.tokenize(s) for s in sentences]
  # A newline inside a sentence separates words as a space does.
  assert tokenizer.tokenize_sentences(["a\nb"])[1].tolist() == [2]


def test_ids_do_not_depend_on_what_the_tokenizer_has_seen_or_forgotten(monkeypatch):
  rng = random.Random(5)
  texts = [random_text(rng) for _ in range(3000)]
  fresh = [wordpiece.WordpieceTokenizer(VOCAB, True).tokenize(t) for t in texts[:200]]
  monkeypatch.setattr(wordpiece, "MAX_CACHED_TOKENS", 50)  # Forgets every few texts, mid-corpus.
  tokenizer = wordpiece.WordpieceTokenizer(VOCAB, True)
  batches = [tokenizer.tokenize_batch(texts[i:i + 37]) for i in range(0, len(texts), 37)]
  assert [ids for batch in batches for ids in batch][:200] == fresh


def test_the_token_table_grows_and_finds_every_token():
  tokenizer = wordpiece.WordpieceTokenizer(VOCAB, False)
  words = [f"x{i}" for i in range(70000)]  # Past several growths of the table.
  ids, lengths = tokenizer.tokenize_sentences(words)
  again, _ = tokenizer.tokenize_sentences(words)
  np.testing.assert_array_equal(ids, again)
  assert lengths.tolist() == [len(tokenizer.tokens_ids([w])[0]) for w in words]


def test_vocab_errors_are_the_messages_of_tokenization():
  with pytest.raises(wordpiece.WordpieceError, match=r"has no \['\[MASK\]'\]"):
    wordpiece.WordpieceTokenizer(VOCAB[:4] + PIECES, True)
  with pytest.raises(wordpiece.WordpieceError, match="lists 1 token"):
    wordpiece.WordpieceTokenizer(VOCAB + ["the"], True)
  assert wordpiece.WordpieceTokenizer(VOCAB, True).word_continuation() == \
      tokenization.WordpieceTokenizer(VOCAB, True).word_continuation()


def test_vocab_files_are_read_as_tokenization_reads_them(tmp_path):
  path = tmp_path / "vocab.txt"
  path.write_bytes("\n".join(VOCAB[:20]).encode("utf-8") + b"\r\n\n  \nzz\r\n")
  ours = wordpiece.load_tokenizer(str(path), True)
  theirs = tokenization.load_tokenizer(str(path), "wordpiece", True)
  assert ours.convert_ids_to_tokens(range(ours.vocab_size)) == theirs.convert_ids_to_tokens(range(theirs.vocab_size))
  with pytest.raises(wordpiece.WordpieceError, match="does not exist"):
    wordpiece.load_tokenizer(str(tmp_path / "missing.txt"))


def test_the_tokenizer_imports_no_tensorflow():
  code = ("import sys; from data_prep import wordpiece; t = wordpiece.WordpieceTokenizer(['[PAD]', '[UNK]', '[CLS]', "
          "'[SEP]', '[MASK]', 'a'], True); assert t.tokenize('A a!') == [5, 5, 1]; "
          "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'")
  subprocess.run([sys.executable, "-c", code], check=True)
