"""What the conversion tests share: tiny transformers models and their inputs, comparisons, the command."""
import os

import numpy as np
import tensorflow as tf
import torch
import transformers

from tpu_electra.convert import cli

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIALS + [f"w{i}" for i in range(len(SPECIALS), 97)]


def _inputs(batch, length, vocab_size, seed=0):
  """A padded batch: every row but the first is shorter, with [CLS] .. [SEP] and two segments."""
  rng = np.random.default_rng(seed)
  ids = rng.integers(len(SPECIALS), vocab_size, size=(batch, length)).astype(np.int32)
  mask = np.zeros_like(ids)
  types = np.zeros_like(ids)
  for row in range(batch):
    n = length if row == 0 else int(rng.integers(3, length))
    ids[row, 0], ids[row, n - 1] = 2, 3
    ids[row, n:] = 0
    mask[row, :n] = 1
    types[row, n // 2:n] = 1
  return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}


def _torch_inputs(inputs):
  return {"input_ids": torch.tensor(inputs["input_word_ids"], dtype=torch.long),
          "attention_mask": torch.tensor(inputs["input_mask"], dtype=torch.long),
          "token_type_ids": torch.tensor(inputs["input_type_ids"], dtype=torch.long)}


def _save(model, directory, safe=True, vocab=VOCAB):
  model.save_pretrained(directory, safe_serialization=safe)
  with open(os.path.join(directory, "vocab.txt"), "w") as f:
    f.write("\n".join(vocab) + "\n")
  return str(directory)


def _electra_config(**overrides):
  values = dict(vocab_size=len(VOCAB), embedding_size=16, hidden_size=32, num_hidden_layers=2,
                num_attention_heads=4, intermediate_size=64, max_position_embeddings=40, hidden_act="gelu")
  values.update(overrides)
  return transformers.ElectraConfig(**values)


def _bert_config():
  return transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, max_position_embeddings=40)


def _randomize(model, seed):
  # transformers initializes LayerNorm to (1, 0) and biases to 0: random values test their mapping too.
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for parameter in model.parameters():
      parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
  return model.eval()


def _sequence_output(encoder, inputs):
  return encoder({k: tf.constant(v) for k, v in inputs.items()}, training=False)["sequence_output"].numpy()


def _from_tokenizer(batch):
  return {"input_word_ids": batch["input_ids"].astype(np.int32),
          "input_mask": batch["attention_mask"].astype(np.int32),
          "input_type_ids": batch["token_type_ids"].astype(np.int32)}


def _max_diff(ours, theirs, mask=None):
  diff = np.abs(np.asarray(ours) - np.asarray(theirs))
  return float(diff[mask.astype(bool)].max() if mask is not None else diff.max())


def _polarity_sentences(count):
  from data_prep import embedded  # pylint: disable=g-import-not-at-top
  try:
    path = embedded.fetch(embedded.PANG_LEE_POLARITY)
  except Exception:  # pylint: disable=broad-except
    return ["A deeply moving film.", "The plot was thin, and the acting worse - but the soundtrack? Superb!",
            "ok", "Ni\u00f1o's caf\u00e9 scenes are the best part of this overlong mess."] * (count // 4)
  from data_prep import embedded_tasks  # pylint: disable=g-import-not-at-top
  with open(path, "rb") as f:
    lines = [text for text, _ in embedded_tasks.parse_polarity(f.read())]
  return lines[:count // 2] + lines[-(count - count // 2):]


def _generator_pair(tmp_path):
  discriminator = _randomize(transformers.ElectraForPreTraining(_electra_config()), seed=4)
  generator = _randomize(transformers.ElectraForMaskedLM(
      _electra_config(hidden_size=16, num_attention_heads=2, intermediate_size=32)), seed=5)
  # google-research/electra trains both on one embedding table; its released pairs hold copies.
  with torch.no_grad():
    generator.electra.embeddings.load_state_dict(discriminator.electra.embeddings.state_dict())
  return discriminator, generator


def _mlm_logits(objective, inputs, positions):
  generator_output = objective.generator({k: tf.constant(v) for k, v in inputs.items()}, training=False)
  return objective.mlm_head(generator_output["sequence_output"], masked_positions=tf.constant(positions)).numpy()



def _cli(*args):
  return cli.cli(["convert", *args])

