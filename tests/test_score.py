"""N-best rescoring: WER, the n-best format, both pseudo-log-likelihoods against slow references."""
import dataclasses
import json
import os

import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import runs
from tpu_electra import score
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import script

SPECIAL = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
CONFIG = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                       max_position_embeddings=32, dropout_rate=0.0, attention_dropout_rate=0.0)


@pytest.fixture(scope="module")
def script_model():
  tf.keras.utils.set_random_seed(4)
  objective = script.Script(CONFIG)
  objective.encoder(objective.encoder.dummy_inputs())
  return objective


def test_word_errors_count_substitutions_insertions_and_deletions():
  assert score.word_errors("a b c".split(), "a b c".split()) == 0
  assert score.word_errors("a x c".split(), "a b c".split()) == 1
  assert score.word_errors("a b c d".split(), "a b c".split()) == 1
  assert score.word_errors("a c".split(), "a b c".split()) == 1
  assert score.word_errors([], "a b".split()) == 2
  assert score.word_errors("b a".split(), "a b".split()) == 2


def test_corpus_wer_divides_total_errors_by_total_reference_words():
  pairs = [("the cat sat", "the cat sat down"), ("A DOG", "a dog")]
  assert score.word_error_rate(pairs) == pytest.approx(1 / 6)
  assert score.word_error_rate(pairs, case_sensitive=True) == pytest.approx(3 / 6)
  with pytest.raises(ValueError, match="no words"):
    score.word_error_rate([("a", "")])


def test_nbest_reader_rejects_malformed_lines_with_their_line_number():
  good = json.dumps({"id": "u", "hypotheses": [{"text": "a b", "score": -1}], "reference": "a b"})
  (utterance,) = score.parse_nbest([good, ""])
  assert utterance.hypotheses[0].score == -1.0 and utterance.reference == "a b"
  with pytest.raises(score.NbestError, match=r"f:2: every hypothesis needs a \"text\""):
    score.parse_nbest([good, json.dumps({"id": "v", "hypotheses": [{"score": 1}]})], source="f")
  with pytest.raises(score.NbestError, match="f:1: not JSON"):
    score.parse_nbest(["{"], source="f")


def test_rescoring_picks_the_best_total_and_reports_wer_before_and_after():
  utterance = score.Utterance("u", [score.Hypothesis("a cat sad", -1.0, lm_score=-9.0),
                                    score.Hypothesis("a cat sat", -1.5, lm_score=-3.0)], "a cat sat")
  records, summary = score.rescore([utterance], lm_weight=1.0)
  assert records[0]["best"] == 1 and records[0]["word_errors"] == 0
  assert summary["wer_first_pass"] == pytest.approx(1 / 3) and summary["wer_rescored"] == 0.0
  records, _ = score.rescore([utterance], lm_weight=0.0)
  assert records[0]["best"] == 0


def _log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_masked_lm_pll_matches_one_masked_pass_per_token(script_model):
  hypotheses = [[10, 11, 12], [20, 21], [30, 31, 32, 33]]
  # Batch size 4 spreads the 9 masked copies over 3 batches, the last one padded.
  scorer = score.MaskedLMScorer(script_model, SPECIAL, max_seq_length=8, batch_size=4)
  scores = scorer.score(hypotheses)
  for tokens, value in zip(hypotheses, scores):
    sequence = [2] + tokens + [3]
    expected = 0.0
    for t in range(1, len(sequence) - 1):
      masked = list(sequence)
      masked[t] = 4
      ids = tf.constant([masked])
      output = script_model.encoder({"input_word_ids": ids, "input_mask": tf.ones_like(ids),
                                     "input_type_ids": tf.zeros_like(ids)})
      logits = script_model.mlm_head(output["sequence_output"], masked_positions=tf.constant([[t]])).numpy()[0, 0]
      expected += _log_softmax(logits)[sequence[t]]
    assert value == pytest.approx(expected, rel=1e-4)


def test_script_pll_is_eq7_on_the_unmasked_sequence(script_model):
  hypotheses = [[10, 11, 12], [20, 21]]
  scores = score.SelfCriticScorer(script_model, SPECIAL, max_seq_length=8, batch_size=2).score(hypotheses)
  for tokens, value in zip(hypotheses, scores):
    ids = tf.constant([[2] + tokens + [3]])
    output = script_model.encoder({"input_word_ids": ids, "input_mask": tf.ones_like(ids),
                                   "input_type_ids": tf.zeros_like(ids)})
    positions = tf.constant([list(range(1, len(tokens) + 1))])
    logits = script_model.mlm_head(output["sequence_output"], masked_positions=positions).numpy()[0]
    # log p(t+) = log(sum exp s / (sum exp s + 1)) = -log(1 + exp(-logsumexp s)).
    logsumexp = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    assert value == pytest.approx(float(-np.log1p(np.exp(-logsumexp)).sum()), rel=1e-4)


def test_cli_rescores_an_nbest_file_and_writes_scores_and_summary(script_model, token_data_dir, tmp_path, capsys):
  model_dir = str(tmp_path / "model")
  runs.save_pretraining_dir(script_model, model_dir, data_dir=token_data_dir)
  nbest = tmp_path / "nbest.jsonl"
  nbest.write_text("\n".join(json.dumps(r) for r in [
      {"id": "u1", "hypotheses": [{"text": "w10 w11 w12", "score": -2.0}, {"text": "w10 w13", "score": -2.5}],
       "reference": "w10 w11 w12"},
      {"id": "u2", "hypotheses": [{"text": "w20 w21", "score": -1.0}]},
  ]) + "\n")
  out = str(tmp_path / "rescored.jsonl")
  assert score.cli(["score", f"--model_dir={model_dir}", f"--nbest={nbest}", f"--output={out}",
                    "--method=script_pll", "--lm_weight=0.5", "--max_seq_length=16"]) == 0
  with open(out) as f:
    records = [json.loads(line) for line in f]
  assert [r["id"] for r in records] == ["u1", "u2"]
  for hypothesis in records[0]["hypotheses"]:
    assert hypothesis["lm_score"] < 0.0
    assert hypothesis["total"] == pytest.approx(hypothesis["score"] + 0.5 * hypothesis["lm_score"])
  with open(out + ".summary.json") as f:
    summary = json.load(f)
  assert summary["utterances"] == 2 and summary["with_reference"] == 1
  assert 0.0 <= summary["wer_rescored"] <= 1.0
  assert "wer_first_pass" in capsys.readouterr().out


def test_each_method_asks_for_its_capability_in_one_line():
  from tpu_electra.objectives import teams  # pylint: disable=g-import-not-at-top
  teams_model = teams.Teams(dataclasses.replace(CONFIG, num_layers=2))
  with pytest.raises(ValueError, match="needs a OnePassScorer") as error:
    score.SelfCriticScorer(teams_model, SPECIAL, max_seq_length=8, batch_size=2)
  assert "\n" not in str(error.value)
  # TEAMS scores masked tokens with its generator.
  network, head = score.mlm_network(teams_model)
  assert network is teams_model.generator and head is teams_model.mlm_head


def test_a_converted_dir_without_its_mlm_head_is_refused_in_one_line(script_model, token_data_dir, tmp_path, capsys):
  model_dir = str(tmp_path / "converted")
  runs.save_pretraining_dir(script_model, model_dir, data_dir=token_data_dir)
  info_path = os.path.join(model_dir, "run.json")
  with open(info_path) as f:
    info = json.load(f)
  info["conversion"] = {"absent": ["mlm_head"]}  # as tpu_electra.convert writes for a BertModel
  with open(info_path, "w") as f:
    json.dump(info, f)
  nbest = tmp_path / "nbest.jsonl"
  nbest.write_text(json.dumps({"id": "u1", "hypotheses": [{"text": "w10 w11", "score": -1.0}]}) + "\n")
  assert score.cli(["score", f"--model_dir={model_dir}", f"--nbest={nbest}", f"--output={tmp_path / 'out.jsonl'}",
                    "--method=mlm_pll", "--max_seq_length=16"]) == 1
  error = capsys.readouterr().err
  assert "holds no trained mlm_head" in error and "random weights" in error and error.count("\n") == 1
  assert not os.path.exists(tmp_path / "out.jsonl")
