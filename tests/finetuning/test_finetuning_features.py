"""The tokenizer protocol helpers and sequence packing shared by every task."""
import pytest

from tpu_electra.finetuning import features
from tpu_electra.finetuning import squad


class _BatchCountingTokenizer:
  """Offers `tokenize_batch`, like the tensorflow_text tokenizers, and counts its calls."""

  special_token_ids = {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2}

  def __init__(self):
    self.batch_calls = 0

  def tokenize(self, text):
    return [len(w) for w in text.split()]

  def tokenize_batch(self, texts):
    self.batch_calls += 1
    return [self.tokenize(t) for t in texts]


def test_pack_segments_builds_cls_segments_seps_and_pads():
  ids = features.SpecialIds(cls=101, sep=102, pad=0)
  packed = features.pack_segments([[7, 8], [9], [5]], [0, 1, 1], max_seq_length=9, ids=ids)
  assert packed.input_ids == [101, 7, 8, 102, 9, 102, 5, 102, 0]
  assert packed.segment_ids == [0, 0, 0, 0, 1, 1, 1, 1, 0]
  assert packed.input_mask == [1] * 8 + [0]


def test_pad_refuses_a_sequence_that_is_too_long():
  assert features.pad([1, 2], 4, 0) == [1, 2, 0, 0]
  with pytest.raises(ValueError, match="does not fit"):
    features.pad([1, 2, 3], 2, 0)


def test_special_ids_name_what_the_tokenizer_lacks():
  class NoPad:
    special_token_ids = {"[CLS]": 1, "[SEP]": 2}
  with pytest.raises(ValueError, match=r"lacks \['\[PAD\]'\]"):
    features.special_ids(NoPad())


def test_tokenize_each_uses_one_batch_call_when_offered():
  tokenizer = _BatchCountingTokenizer()
  assert features.tokenize_each(tokenizer, ["ab c", "", "xyz"]) == [[2, 1], [], [3]]
  assert tokenizer.batch_calls == 1
  assert features.tokenize_each(tokenizer, []) == []
  assert tokenizer.batch_calls == 1


def test_squad_tokenizes_a_shared_paragraph_once():
  tokenizer = _BatchCountingTokenizer()
  words = ["one", "two", "three"]
  examples = [squad.SquadExample(f"q{i}", "what", words, []) for i in range(3)]
  squad.convert_examples_to_features(examples, tokenizer, max_seq_length=16, doc_stride=4,
                                     max_query_length=4, is_training=False)
  assert tokenizer.batch_calls == 1
