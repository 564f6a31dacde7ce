"""Vocab specs and WordPiece learning to an exact size with the special tokens first."""
import pytest

from data_prep import vocab
from tpu_electra.data import tokenization

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A lazy dog sleeps in the warm sun all day long.",
    "Foxes and dogs are both animals that live near people.",
    "Jumping, running and sleeping: the daily life of a dog!",
] * 20


@pytest.mark.parametrize("size", [60, 400])
def test_learned_vocab_has_exact_size_and_special_tokens_first(size):
  learned = vocab.learn_wordpiece(SENTENCES, size, do_lower_case=True)
  assert len(learned) == size
  assert learned[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  assert len(set(learned)) == size


def test_small_corpus_is_padded_with_unused_tokens():
  learned = vocab.learn_wordpiece(SENTENCES, 400, do_lower_case=True)
  assert learned[-1].startswith("[unused")
  assert "[unused0]" in learned


def test_truncation_keeps_every_character_so_nothing_becomes_unknown():
  learned = vocab.learn_wordpiece(SENTENCES, 80, do_lower_case=True)
  tokenizer = tokenization.WordpieceTokenizer(learned, do_lower_case=True)
  ids = tokenizer.tokenize_batch(SENTENCES[:4])
  assert all(tokenizer.special_token_ids["[UNK]"] not in sentence for sentence in ids)


def test_cased_vocab_keeps_capitals():
  learned = vocab.learn_wordpiece(SENTENCES, 200, do_lower_case=False)
  assert "T" in learned and "The" in learned


def test_fit_to_size_skips_unused_names_already_present():
  assert vocab.fit_to_size(["[PAD]", "[unused0]"], 4) == ["[PAD]", "[unused0]", "[unused1]", "[unused2]"]


def test_sample_is_uniform_bounded_and_seeded():
  first, second = vocab.SentenceSample(10, seed=3), vocab.SentenceSample(10, seed=3)
  for i in range(1000):
    first.add(str(i))
    second.add(str(i))
  assert len(first.sentences) == 10 and first.seen == 1000
  assert first.sentences == second.sentences
  assert max(int(s) for s in first.sentences) >= 10  # Later sentences get in, not just the first ten.


def test_vocab_spec_parsing(tmp_path):
  assert vocab.parse_vocab_spec("wordpiece:8192") == vocab.VocabSpec("wordpiece", 8192, None)
  assert vocab.parse_vocab_spec("sentencepiece:8000") == vocab.VocabSpec("sentencepiece", 8000, None, "unigram")
  assert vocab.parse_vocab_spec("sentencepiece_unigram:8000") == vocab.VocabSpec("sentencepiece", 8000, None, "unigram")
  assert vocab.parse_vocab_spec("sentencepiece_bpe:8000") == vocab.VocabSpec("sentencepiece", 8000, None, "bpe")
  existing = tmp_path / "vocab.txt"
  existing.write_text("[PAD]\n")
  assert vocab.parse_vocab_spec(str(existing)) == vocab.VocabSpec("wordpiece", None, str(existing))
  model = tmp_path / "sp.model"
  model.write_bytes(b"x")
  assert vocab.parse_vocab_spec(str(model)).vocab_type == "sentencepiece"


@pytest.mark.parametrize("spec, message", [
    ("wordpiece:3", "more than the 5 special tokens"),
    ("/no/such/vocab.txt", "neither wordpiece:SIZE, sentencepiece.*:SIZE nor an existing vocab file"),
    ("sentencepiece_char:8000", "neither wordpiece:SIZE"),
])
def test_bad_vocab_specs_are_refused(spec, message):
  with pytest.raises(vocab.VocabError, match=message):
    vocab.parse_vocab_spec(spec)


def test_fit_to_size_truncates_from_the_end():
  assert vocab.fit_to_size(["[PAD]", "a", "##a", "ab"], 3) == ["[PAD]", "a", "##a"]


def test_learned_sentencepiece_has_exact_size_and_special_pieces_first():
  model = vocab.learn_sentencepiece(SENTENCES, 36, do_lower_case=True)
  tokenizer = tokenization.SentencepieceTokenizer(model, do_lower_case=True)
  assert tokenizer.vocab_size == 36
  assert tokenizer.special_token_ids == {t: i for i, t in enumerate(vocab.RESERVED_TOKENS)}
  assert tokenizer.special_token_ids["[UNK]"] not in tokenizer.tokenize("THE LAZY DOG")


def test_sentencepiece_size_beyond_the_corpus_is_a_clear_error():
  with pytest.raises(vocab.VocabError, match="could not learn 5000 pieces .* smaller size or give more text"):
    vocab.learn_sentencepiece(SENTENCES, 5000, do_lower_case=True)


def test_learned_sentencepiece_bpe_has_exact_size_and_special_pieces_first():
  model = vocab.learn_sentencepiece(SENTENCES, 60, do_lower_case=True, model_type="bpe")
  tokenizer = tokenization.SentencepieceTokenizer(model, do_lower_case=True)
  assert tokenizer.vocab_size == 60
  assert tokenizer.special_token_ids == {t: i for i, t in enumerate(vocab.RESERVED_TOKENS)}
  ids = tokenizer.tokenize("the lazy dog")
  assert tokenizer.special_token_ids["[UNK]"] not in ids
  assert "".join(tokenizer.convert_ids_to_tokens(ids)) == "\u2581the\u2581lazy\u2581dog"


def test_truncation_keeps_both_forms_of_every_character():
  learned = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "ab", "ba", "##a", "aab", "##b"]
  assert vocab.fit_to_size(learned, 9) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##a", "##b"]
  assert vocab.fit_to_size(learned, 10) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "ab", "##a", "##b"]


@pytest.mark.parametrize("estimate", [1, 7, 13, 40, 500])
@pytest.mark.parametrize("parallelism", [1, 3])
def test_threshold_search_finds_the_largest_threshold_that_still_fills_the_vocab(monkeypatch, estimate, parallelism):
  # A vocab that shrinks with the threshold: 1000 // t tokens, so 1000 // 14 = 71 >= 70 > 1000 // 15.
  probes = []
  monkeypatch.setattr(vocab, "wordpiece_probe", lambda job: probes.append(job[1]) or ["x"] * (1000 // job[1]))
  found = vocab._largest_threshold_vocab([], 70, 2, 1000, estimate, map, parallelism)
  assert len(found) == 1000 // 14
  assert len(set(probes)) == len(probes)  # No threshold is learned twice.


def test_threshold_search_falls_back_to_the_lowest_threshold_when_nothing_fills_the_vocab(monkeypatch):
  monkeypatch.setattr(vocab, "wordpiece_probe", lambda job: ["x"] * (50 - job[1]))
  assert len(vocab._largest_threshold_vocab([], 70, 2, 30, 5, map, 1)) == 48


def test_parallel_probes_learn_the_same_vocab():
  sequential = vocab.learn_wordpiece(SENTENCES, 90, do_lower_case=True)
  assert vocab.learn_wordpiece(SENTENCES, 90, do_lower_case=True, map_fn=map, parallelism=3) == sequential
