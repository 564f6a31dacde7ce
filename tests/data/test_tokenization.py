"""Tokenizers over tensorflow_text ops: normalization, batching, special tokens, loading."""
import io

import pytest
import sentencepiece as spm
import tensorflow as tf

from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import tokenization

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "great", "##est", "cafe", "they", "'", "##re", "re", ",", ".", "hello", "world", "Great", "café"]
SENTENCES = ["The quick brown fox jumps over the lazy dog.", "A lazy dog sleeps in the warm sun all day long."] * 30


@pytest.fixture(scope="module")
def uncased():
  return tokenization.WordpieceTokenizer(SPECIAL + WORDS, do_lower_case=True)


def _pieces(tokenizer, text):
  return tokenizer.convert_ids_to_tokens(tokenizer.tokenize(text))


def test_uncased_wordpiece_lowercases_strips_accents_and_splits_punctuation(uncased):
  assert _pieces(uncased, "They're the GREATEST, Café.") == ["they", "'", "re", "the", "great", "##est", ",", "cafe", "."]


def test_cased_wordpiece_keeps_case_and_accents():
  cased = tokenization.WordpieceTokenizer(SPECIAL + WORDS, do_lower_case=False)
  assert _pieces(cased, "Great café") == ["Great", "café"]


def test_unknown_words_and_special_token_text_become_unk(uncased):
  unk = uncased.special_token_ids["[UNK]"]
  assert uncased.tokenize("zebra") == [unk]
  assert uncased.special_token_ids["[MASK]"] not in uncased.tokenize("hello [MASK] world")


def test_batch_is_one_call_and_matches_single_texts(uncased, monkeypatch):
  texts = ["hello world", "", "the greatest."]
  expected = [uncased.tokenize(t) for t in texts]
  calls = []
  original = uncased.tokenize_tensor
  monkeypatch.setattr(uncased, "tokenize_tensor", lambda x: calls.append(x) or original(x))
  assert uncased.tokenize_batch(texts) == expected
  assert len(calls) == 1 and expected[1] == []


def test_tokenize_tensor_works_inside_tf_data(uncased):
  dataset = tf.data.Dataset.from_tensor_slices(["hello world", "the cafe"]).batch(2).map(uncased.tokenize_tensor)
  assert next(iter(dataset)).to_list() == uncased.tokenize_batch(["hello world", "the cafe"])


def test_special_ids_vocab_size_and_id_lookup(uncased):
  assert uncased.special_token_ids == {t: i for i, t in enumerate(SPECIAL)}
  assert uncased.vocab_size == len(SPECIAL) + len(WORDS)
  assert uncased.id_to_token(5) == "the" and uncased.token_to_id("the") == 5
  assert uncased.token_to_id("missing") == uncased.special_token_ids["[UNK]"]


def test_vocab_without_special_tokens_is_refused():
  with pytest.raises(tokenization.TokenizerError, match=r"has no \['\[CLS\]', '\[MASK\]'\]"):
    tokenization.WordpieceTokenizer(["[PAD]", "[UNK]", "[SEP]", "the"], do_lower_case=True)


def _sentencepiece_model(with_special_tokens):
  model = io.BytesIO()
  options = dict(sentence_iterator=iter(SENTENCES), model_writer=model, vocab_size=40, minloglevel=2,
                 hard_vocab_limit=False)
  if with_special_tokens:
    options.update(pad_id=0, pad_piece="[PAD]", unk_id=1, unk_piece="[UNK]", bos_id=-1, eos_id=-1,
                   control_symbols=["[CLS]", "[SEP]", "[MASK]"])
  spm.SentencePieceTrainer.train(**options)
  return model.getvalue()


def test_sentencepiece_with_special_pieces_tokenizes_and_never_emits_control_symbols():
  tokenizer = tokenization.SentencepieceTokenizer(_sentencepiece_model(True), do_lower_case=True)
  assert tokenizer.special_token_ids == {t: i for i, t in enumerate(SPECIAL)}
  ids = tokenizer.tokenize("The LAZY dog [MASK]")
  assert all(isinstance(i, int) for i in ids)
  assert tokenizer.special_token_ids["[MASK]"] not in ids
  assert "".join(tokenizer.convert_ids_to_tokens(ids)).startswith("▁the▁lazy▁dog")


def test_sentencepiece_without_special_pieces_is_refused_up_front():
  # electra #8: a model without [UNK] & co. failed deep in data prep with KeyError '[UNK]'.
  with pytest.raises(tokenization.TokenizerError, match=r"has no \['\[PAD\]', '\[UNK\]', '\[CLS\]'"):
    tokenization.SentencepieceTokenizer(_sentencepiece_model(False), do_lower_case=True)


def test_load_tokenizer_by_type_and_errors(tmp_path):
  vocab_path = tmp_path / "vocab.txt"
  vocab_path.write_text("\n".join(SPECIAL + WORDS) + "\n")
  assert tokenization.load_tokenizer(str(vocab_path), "wordpiece", True).tokenize("hello") == [15]
  model_path = tmp_path / "sp.model"
  model_path.write_bytes(_sentencepiece_model(True))
  assert tokenization.load_tokenizer(str(model_path), "sentencepiece", True).vocab_type == "sentencepiece"
  with pytest.raises(tokenization.TokenizerError, match="does not exist"):
    tokenization.load_tokenizer(str(tmp_path / "missing.txt"))
  with pytest.raises(tokenization.TokenizerError, match="unknown vocab_type 'bpe'"):
    tokenization.load_tokenizer(str(vocab_path), "bpe")
  with pytest.raises(tokenization.TokenizerError, match="is not a SentencePiece model"):
    tokenization.load_tokenizer(str(vocab_path), "sentencepiece")


def test_from_manifest_checks_the_vocab_against_the_manifest(tmp_path):
  (tmp_path / "vocab.txt").write_text("\n".join(SPECIAL + WORDS) + "\n")
  manifest = manifest_lib.Manifest(
      vocab_file="vocab.txt", vocab_size=len(SPECIAL) + len(WORDS), vocab_type="wordpiece", do_lower_case=True,
      special_token_ids={t: i for i, t in enumerate(SPECIAL)}, max_seq_length=16, shards=[], num_documents=0,
      num_examples=0, num_tokens=0, settings_hash="x")
  assert tokenization.from_manifest(manifest, str(tmp_path)).vocab_size == manifest.vocab_size
  manifest.vocab_size += 1
  with pytest.raises(manifest_lib.DataError, match="does not match the manifest"):
    tokenization.from_manifest(manifest, str(tmp_path))


def test_word_continuation_marks_wordpiece_suffixes_only(uncased):
  flags = dict(zip(SPECIAL + WORDS, uncased.word_continuation()))
  assert flags["##est"] and flags["##re"]
  assert not any(flags[t] for t in SPECIAL + ["the", "great", "'", ",", "Great"])


def test_word_continuation_of_sentencepiece_follows_the_word_start_mark():
  tokenizer = tokenization.SentencepieceTokenizer(_sentencepiece_model(True), do_lower_case=True)
  flags = dict(zip(tokenizer.convert_ids_to_tokens(range(tokenizer.vocab_size)), tokenizer.word_continuation()))
  assert not any(flags[t] for t in SPECIAL)
  for piece, continues in flags.items():
    if piece.startswith("\u2581") or piece in SPECIAL or piece in (".", ","):
      assert not continues, piece
  pieces = tokenizer.convert_ids_to_tokens(tokenizer.tokenize("the lazy dog sleeps"))
  # Every word is its start piece plus continuing pieces.
  assert sum(not flags[p] for p in pieces) == 4
