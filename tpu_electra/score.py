r"""Rescores n-best lists (ASR, MT) with a pretrained model's pseudo-log-likelihood, and reports WER.

  python -m tpu_electra.score --model_dir=PRETRAIN_DIR --nbest=nbest.jsonl --output=rescored.jsonl \
      [--method=mlm_pll|script_pll] [--lm_weight=1.0] [--batch_size=64] [--max_seq_length=128]

Input, one JSON object per line (one utterance):

  {"id": "utt-1",
   "hypotheses": [{"text": "the cat sat", "score": -12.5}, {"text": "the cat sad", "score": -12.9}],
   "reference": "the cat sat"}

`score` is the first-pass system's score of the hypothesis (higher is better, e.g. a log
probability); `reference` is optional. Each hypothesis gets `lm_score` (its pseudo-log-likelihood,
a sum of log probabilities over its word-piece tokens, [CLS]/[SEP] excluded) and
`total = score + lm_weight * lm_score`; the hypothesis with the highest total is the rescored
1-best. Output, one JSON object per line, in input order:

  {"id", "hypotheses": [{"text", "score", "lm_score", "total"}, ...], "best": index, "best_text",
   and with a reference: "reference", "word_errors", "reference_words"}

A summary (utterances, and with references the word error rate of the first-pass 1-best and of the
rescored 1-best) is printed and written to `<output>.summary.json`.

Methods:
- mlm_pll: the usual masked-LM pseudo-log-likelihood (Salazar et al. 2020): for each token t,
  mask it and read log p(x_t | x without t); T forward passes per hypothesis of T tokens, batched
  across hypotheses. Works for any objective that is a MaskedLanguageModel: BERT and SCRIPT score
  with their encoder, ELECTRA, ALE and TEAMS with their generator.
- script_pll: a one-pass PLL, for an objective that is a OnePassScorer: SCRIPT's Eq. 7,
  sum_t log p(t+ | x), where p(t+ | x) = sum_v exp(s_tv) / (sum_v exp(s_tv) + 1) from the MLM
  head's logits s_t on the unmasked sequence (`tpu_electra.objectives.script.pseudo_log_likelihood`).

Word error rate: word-level Levenshtein distance (substitutions + insertions + deletions) over the
number of reference words, summed over utterances before dividing; words are compared lower-cased
unless --case_sensitive.
"""
# pylint: disable=g-import-not-at-top,wrong-import-position  (flags are checked before TensorFlow loads)
from absl import flags

from tpu_electra import cli_utils

METHODS = ("mlm_pll", "script_pll")


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the CLI's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("model_dir", None, "Pretraining model dir, or a checkpoint prefix inside one.",
                      flag_values=flag_values)
  flags.DEFINE_string("nbest", None, "Input n-best JSON lines (see the module docstring).", flag_values=flag_values)
  flags.DEFINE_string("output", None, "Output JSON lines; the summary goes to <output>.summary.json.",
                      flag_values=flag_values)
  flags.DEFINE_enum("method", "mlm_pll", list(METHODS), "Pseudo-log-likelihood to score with.",
                    flag_values=flag_values)
  flags.DEFINE_float("lm_weight", 1.0, "total = score + lm_weight * lm_score.", flag_values=flag_values)
  flags.DEFINE_integer("batch_size", 64, "Sequences per forward pass.", flag_values=flag_values)
  flags.DEFINE_integer("max_seq_length", 128, "Tokens per sequence, [CLS] and [SEP] included.",
                       flag_values=flag_values)
  flags.DEFINE_string("vocab", None, "Vocab file to use instead of the pretraining data's.", flag_values=flag_values)
  flags.DEFINE_enum("vocab_type", None, ["wordpiece", "sentencepiece"], "Kind of --vocab.", flag_values=flag_values)
  flags.DEFINE_boolean("do_lower_case", None, "Lower-case text for --vocab.", flag_values=flag_values)
  flags.DEFINE_boolean("case_sensitive", False, "Compare words case-sensitively for WER.", flag_values=flag_values)


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors that need no TensorFlow to find (cli_utils.run_as_program)."""
  cli_utils.require(flag_values, "model_dir", "nbest", "output")


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "tpu_electra.score", check_flags)

import dataclasses
import json
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tpu_electra import fileio
from tpu_electra import runs
from tpu_electra.modeling import encoder_inputs
from tpu_electra.objectives import MaskedLanguageModel, OnePassScorer


class NbestError(ValueError):
  """An n-best file that does not follow the documented format."""


# ----------------------------------------------------------------------------------------------
# Word error rate


def word_errors(hypothesis: Sequence[str], reference: Sequence[str]) -> int:
  """Minimum substitutions + insertions + deletions turning `hypothesis` into `reference`."""
  previous = list(range(len(reference) + 1))
  for i, hyp_word in enumerate(hypothesis, start=1):
    current = [i] + [0] * len(reference)
    for j, ref_word in enumerate(reference, start=1):
      current[j] = min(previous[j] + 1,  # an extra hypothesis word (insertion)
                       current[j - 1] + 1,  # a missing reference word (deletion)
                       previous[j - 1] + (hyp_word != ref_word))  # match or substitution
    previous = current
  return previous[-1]


def word_error_rate(pairs: Sequence[Tuple[str, str]], case_sensitive: bool = False) -> float:
  """Corpus WER of (hypothesis, reference) texts: total word errors / total reference words."""
  errors = words = 0
  for hypothesis, reference in pairs:
    if not case_sensitive:
      hypothesis, reference = hypothesis.lower(), reference.lower()
    ref_words = reference.split()
    errors += word_errors(hypothesis.split(), ref_words)
    words += len(ref_words)
  if words == 0:
    raise ValueError("the references have no words: WER is undefined")
  return errors / words


# ----------------------------------------------------------------------------------------------
# N-best lists


@dataclasses.dataclass
class Hypothesis:
  text: str
  score: float
  lm_score: Optional[float] = None

  def total(self, lm_weight: float) -> float:
    return self.score + lm_weight * (self.lm_score or 0.0)


@dataclasses.dataclass
class Utterance:
  id: str
  hypotheses: List[Hypothesis]
  reference: Optional[str] = None


def parse_nbest(lines, source: str = "<nbest>") -> List[Utterance]:
  """Utterances from JSON lines in the module docstring's format; blank lines are skipped."""
  utterances = []
  for number, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    where = f"{source}:{number}"
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      raise NbestError(f"{where}: not JSON ({e.msg})") from None
    if not isinstance(record, dict) or "id" not in record or not isinstance(record.get("hypotheses"), list):
      raise NbestError(f"{where}: expected an object with \"id\" and a \"hypotheses\" list")
    if not record["hypotheses"]:
      raise NbestError(f"{where}: utterance {record['id']} has no hypotheses")
    hypotheses = []
    for entry in record["hypotheses"]:
      if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
        raise NbestError(f"{where}: every hypothesis needs a \"text\" string")
      score = entry.get("score", 0.0)
      if not isinstance(score, (int, float)) or isinstance(score, bool):
        raise NbestError(f"{where}: hypothesis score {score!r} is not a number")
      hypotheses.append(Hypothesis(entry["text"], float(score)))
    reference = record.get("reference")
    if reference is not None and not isinstance(reference, str):
      raise NbestError(f"{where}: \"reference\" must be a string")
    utterances.append(Utterance(str(record["id"]), hypotheses, reference))
  return utterances


def best_index(hypotheses: Sequence[Hypothesis], lm_weight: float) -> int:
  """The hypothesis with the highest total score; the earlier one on a tie."""
  return max(range(len(hypotheses)), key=lambda i: (hypotheses[i].total(lm_weight), -i))


def rescore(utterances: Sequence[Utterance], lm_weight: float, case_sensitive: bool = False):
  """(output records, summary) once every hypothesis has its lm_score."""
  records, before, after = [], [], []
  for utterance in utterances:
    best = best_index(utterance.hypotheses, lm_weight)
    record = {
        "id": utterance.id,
        "hypotheses": [{"text": h.text, "score": h.score, "lm_score": h.lm_score, "total": h.total(lm_weight)}
                       for h in utterance.hypotheses],
        "best": best,
        "best_text": utterance.hypotheses[best].text,
    }
    if utterance.reference is not None:
      reference = utterance.reference if case_sensitive else utterance.reference.lower()
      best_text = record["best_text"] if case_sensitive else record["best_text"].lower()
      record["reference"] = utterance.reference
      record["word_errors"] = word_errors(best_text.split(), reference.split())
      record["reference_words"] = len(reference.split())
      first_pass = best_index(utterance.hypotheses, 0.0)
      before.append((utterance.hypotheses[first_pass].text, utterance.reference))
      after.append((utterance.hypotheses[best].text, utterance.reference))
    records.append(record)
  summary: Dict[str, object] = {"utterances": len(utterances), "lm_weight": lm_weight,
                                "with_reference": len(after)}
  if after and any(reference.split() for _, reference in after):
    summary["wer_first_pass"] = word_error_rate(before, case_sensitive)
    summary["wer_rescored"] = word_error_rate(after, case_sensitive)
  return records, summary


# ----------------------------------------------------------------------------------------------
# Scorers


def mlm_network(objective) -> Tuple[tf.keras.Model, tf.keras.layers.Layer]:
  """(network, MLM head) that predict masked tokens (the generator when there is one)."""
  if not isinstance(objective, MaskedLanguageModel):
    raise ValueError(f"{type(objective).__name__} is not a masked language model: --method=mlm_pll needs one")
  return objective.masked_lm()


class _Batcher:
  """Packs token-id lists into fixed-shape [batch, length] arrays (one trace, TPU-friendly)."""

  def __init__(self, special_ids: Dict[str, int], max_seq_length: int):
    self.cls, self.sep, self.pad_id = special_ids["[CLS]"], special_ids["[SEP]"], special_ids["[PAD]"]
    self.mask_id = special_ids["[MASK]"]
    self.max_seq_length = max_seq_length

  def sequence(self, token_ids: Sequence[int]) -> List[int]:
    body = list(token_ids)[:self.max_seq_length - 2]
    return [self.cls] + body + [self.sep]

  def pad(self, rows: Sequence[Sequence[int]], batch_size: int) -> Dict[str, np.ndarray]:
    ids = np.full((batch_size, self.max_seq_length), self.pad_id, np.int32)
    mask = np.zeros((batch_size, self.max_seq_length), np.int32)
    for i, row in enumerate(rows):
      ids[i, :len(row)] = row
      mask[i, :len(row)] = 1
    return {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}


class MaskedLMScorer:
  """Sum over tokens of log p(token | the rest), one masked copy per token, batched."""

  def __init__(self, objective, special_ids: Dict[str, int], max_seq_length: int = 128, batch_size: int = 64):
    self.network, self.head = mlm_network(objective)
    self.batcher = _Batcher(special_ids, max_seq_length)
    self.batch_size = batch_size

    def log_probs(batch, positions, targets):
      output = self.network(encoder_inputs(batch), training=False)
      logits = tf.cast(self.head(output["sequence_output"], masked_positions=positions[:, None]), tf.float32)
      log_softmax = tf.nn.log_softmax(logits[:, 0, :], axis=-1)
      return tf.gather(log_softmax, targets, batch_dims=1)

    self._eager = log_probs
    self._compiled = tf.function(log_probs)

  def score(self, token_id_lists: Sequence[Sequence[int]]) -> List[float]:
    jobs = []  # (hypothesis index, masked sequence, position, original token)
    for index, token_ids in enumerate(token_id_lists):
      sequence = self.batcher.sequence(token_ids)
      for position in range(1, len(sequence) - 1):
        masked = list(sequence)
        masked[position] = self.batcher.mask_id
        jobs.append((index, masked, position, sequence[position]))
    totals = np.zeros(len(token_id_lists), np.float64)
    for start in range(0, len(jobs), self.batch_size):
      chunk = jobs[start:start + self.batch_size]
      batch = self.batcher.pad([job[1] for job in chunk], self.batch_size)
      positions = np.zeros(self.batch_size, np.int32)
      targets = np.zeros(self.batch_size, np.int32)
      positions[:len(chunk)] = [job[2] for job in chunk]
      targets[:len(chunk)] = [job[3] for job in chunk]
      # The first call runs eagerly so the head's variables are created (and restored) outside the trace.
      fn = self._compiled if start else self._eager
      values = fn({k: tf.constant(v) for k, v in batch.items()}, tf.constant(positions), tf.constant(targets))
      for job, value in zip(chunk, values.numpy()[:len(chunk)]):
        totals[job[0]] += float(value)
    return totals.tolist()


class SelfCriticScorer:
  """A OnePassScorer's pseudo-log-likelihood (SCRIPT's Eq. 7), one forward pass per hypothesis,
  [CLS]/[SEP] and padding weighted 0."""

  def __init__(self, objective, special_ids: Dict[str, int], max_seq_length: int = 128, batch_size: int = 64):
    if not isinstance(objective, OnePassScorer):
      raise ValueError(f"{type(objective).__name__} has no one-pass pseudo-log-likelihood: --method=script_pll "
                       "needs a OnePassScorer (SCRIPT); use --method=mlm_pll")
    self.batcher = _Batcher(special_ids, max_seq_length)
    self.batch_size = batch_size

    def pll(batch, weights):
      return objective.pseudo_log_likelihood(batch, token_weights=weights)

    self._eager = pll
    self._compiled = tf.function(pll)

  def score(self, token_id_lists: Sequence[Sequence[int]]) -> List[float]:
    scores: List[float] = []
    for start in range(0, len(token_id_lists), self.batch_size):
      rows = [self.batcher.sequence(t) for t in token_id_lists[start:start + self.batch_size]]
      batch = self.batcher.pad(rows, self.batch_size)
      weights = batch["input_mask"].astype(np.float32)
      for i, row in enumerate(rows):
        weights[i, 0] = weights[i, len(row) - 1] = 0.0
      fn = self._compiled if start else self._eager
      values = fn({k: tf.constant(v) for k, v in batch.items()}, tf.constant(weights))
      scores.extend(float(v) for v in values.numpy()[:len(rows)])
    return scores


SCORERS = {"mlm_pll": MaskedLMScorer, "script_pll": SelfCriticScorer}


def score_utterances(utterances: Sequence[Utterance], scorer, tokenizer) -> None:
  """Fills every hypothesis' lm_score in place."""
  hypotheses = [h for u in utterances for h in u.hypotheses]
  token_ids = tokenizer.tokenize_batch([h.text for h in hypotheses])
  for hypothesis, value in zip(hypotheses, scorer.score(token_ids)):
    hypothesis.lm_score = value


def score_file(model_dir: str, nbest_path: str, output_path: str, method: str = "mlm_pll",
               lm_weight: float = 1.0, batch_size: int = 64, max_seq_length: int = 128,
               vocab: Optional[str] = None, vocab_type: Optional[str] = None,
               do_lower_case: Optional[bool] = None, case_sensitive: bool = False) -> Dict[str, object]:
  """Scores and rescores an n-best file; writes the output JSON lines and the summary."""
  if method not in SCORERS:
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
  with fileio.open_text(nbest_path) as f:
    utterances = parse_nbest(f, source=nbest_path)
  run = runs.read_run(model_dir)
  if max_seq_length > run.encoder_config().max_position_embeddings:
    raise ValueError(f"--max_seq_length={max_seq_length} exceeds the model's max_position_embeddings="
                     f"{run.encoder_config().max_position_embeddings}")
  untrained = sorted(set(runs.absent_parts(run)) & {"generator", "mlm_head"})
  if untrained:
    raise ValueError(f"{model_dir} holds no trained {' or '.join(untrained)} (it was converted without them: "
                     "run.json conversion.absent), so its pseudo-log-likelihoods would come from random weights; "
                     "convert a checkpoint with its MLM head (BertForMaskedLM, or ElectraForPreTraining with "
                     "--generator=huggingface:PATH)")
  tokenizer = runs.load_tokenizer(run, vocab, vocab_type, do_lower_case)
  objective = runs.load_objective(run)
  scorer = SCORERS[method](objective, tokenizer.special_token_ids, max_seq_length, batch_size)
  score_utterances(utterances, scorer, tokenizer)
  records, summary = rescore(utterances, lm_weight, case_sensitive)
  summary["method"] = method
  fileio.write_text_atomic(output_path, "".join(json.dumps(r) + "\n" for r in records))
  fileio.write_text_atomic(output_path + ".summary.json", json.dumps(summary, indent=2) + "\n")
  return summary


@cli_utils.one_line_errors(ValueError, OSError)
def run(flag_values: flags.FlagValues) -> int:
  """Runs the scoring the parsed flags ask for; returns the exit status (errors: one line)."""
  check_flags(flag_values)
  summary = score_file(flag_values.model_dir, flag_values.nbest, flag_values.output, flag_values.method,
                       flag_values.lm_weight, flag_values.batch_size, flag_values.max_seq_length,
                       flag_values.vocab, flag_values.vocab_type, flag_values.do_lower_case,
                       flag_values.case_sensitive)
  print(json.dumps(summary, indent=2))
  return 0


cli = cli_utils.command_line(define_flags, run)

