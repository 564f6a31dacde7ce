import pytest

from tpu_electra.data import vocabulary

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##s"]


def test_ids_are_positions_and_unknown_tokens_map_to_unk():
  vocab = vocabulary.Vocabulary(VOCAB, do_lower_case=True, origin="v.txt")
  assert vocab.vocab_size == 7 and vocab.token_to_id("##s") == 6 and vocab.id_to_token(5) == "the"
  assert vocab.token_to_id("cat") == vocab.special_token_ids["[UNK]"] == 1
  assert vocab.convert_ids_to_tokens([2, 5, 3]) == ["[CLS]", "the", "[SEP]"]


def test_a_vocab_without_the_special_tokens_is_one_line_naming_them():
  with pytest.raises(ValueError, match=r"vocab v.txt has no \['\[MASK\]'\]") as error:
    vocabulary.Vocabulary(VOCAB[:4] + VOCAB[5:], do_lower_case=True, origin="v.txt")
  assert "\n" not in str(error.value)
