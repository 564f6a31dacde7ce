"""The recipe: the shipped gin values against the papers' tables, constructor defaults against the
shipped values, and that each recipe value reaches the code that uses it (the sampler's temperature,
the clip norms, fine-tuning's weight-decay exclusions, the seed's shard order).

The papers (docs/DESIGN.md, References), by the names used below: "SCRIPT" is Nijkamp et al., "SCRIPT:
Self-Critic PreTraining of Transformers"; "TEAMS" Shen et al., "Training ELECTRA Augmented with
Multi-word Selection"; "ALE" Han Shao, "Pretraining Deep Learning Models for Natural Language
Understanding"; "ELECTRA-repro" Mercier, "Efficient transfer learning for NLP with ELECTRA". Each value
below names the table (or passage) it comes from.
"""
import fnmatch
import glob
import inspect
import os

import gin
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tests.conftest import write_token_data
from tpu_electra import gin_utils
from tpu_electra import objectives
from tpu_electra import pretrainer  # noqa: F401  (registers the configurables the experiment files bind)
from tpu_electra import runs
from tpu_electra.data import masking
from tpu_electra.data import pretraining
from tpu_electra.finetuning import runner
from tpu_electra.modeling import EncoderConfig, TransformerEncoder
from tpu_electra.objectives import electra
from tpu_electra.objectives import sampling
from tpu_electra.training import layerwise_decay
from tpu_electra.training import optimization

# Not the papers' recipes: tiny models for tests and CPUs (smoke/, models/debug.gin, the CPU-sized
# experiments), and per-task fine-tuning files that change nothing the tables list.
NOT_PAPER_RECIPES = ("smoke/*", "models/debug.gin", "models/cpu.gin", "experiments/cpu_*", "schedules/cpu.gin",
                     "finetune/*")

# The small models' shared values. SCRIPT Table 4 (Small) and ELECTRA-repro Table 5 (Original):
# lr 5e-4, warmup 10000, Adam eps 1e-6, beta_1 0.9, weight decay 0.01, dropout 0.1, 15% masking;
# ALE Table V: the same for its LAMB runs, sequence length 128. beta_2: SCRIPT Table 4 and ALE
# Table V say 0.999 (ELECTRA-repro Table 5 prints 0.9999; the recipe follows the two that agree).
# 80/10/10: SCRIPT Appendix ("Pre-Training Hyperparameters"). Clipping at global norm 1.0 is in
# no table: it is BERT's and google-research/electra's optimization code.
SMALL = {
    "optimizer.learning_rate": 5e-4, "optimizer.warmup_steps": 10000, "optimizer.epsilon": 1e-6,
    "optimizer.beta_1": 0.9, "optimizer.beta_2": 0.999, "optimizer.weight_decay": 0.01, "optimizer.clip_norm": 1.0,
    "optimizer.end_learning_rate": 0.0,  # Linear decay (to 0): every table's "Learning rate decay: Linear".
    "masking.mask_rate": 0.15, "masking.mask_token_fraction": 0.8, "masking.random_token_fraction": 0.1,
    "encoder.num_layers": 12, "encoder.hidden_size": 256, "encoder.intermediate_size": 1024, "encoder.num_heads": 4,
    "encoder.embedding_size": 128, "encoder.dropout_rate": 0.1, "encoder.attention_dropout_rate": 0.1,
    "pretrain.seq_length": 128,
}
# ELECTRA's loss weight lambda = 50 (Clark et al.); SCRIPT's Appendix keeps ELECTRA's
# hyper-parameters and sets its own alpha to 50 likewise. Generator 1/4 of the width: ELECTRA-repro
# Table 5, ALE Table V.
ELECTRA_LOSS = {"objective.generator_fraction": 0.25, "objective.mlm_weight": 1.0, "objective.rtd_weight": 50.0}

RECIPES = {
    # ELECTRA-Small: SCRIPT Table 4 (batch 128) and Table 2's caption (1,000,000 steps); ELECTRA-repro
    # Table 5 (batch 128, 1M steps, AdamW).
    "experiments/electra_small.gin": {
        **SMALL, **ELECTRA_LOSS, "objective.name": "electra", "objective.temperature": 1.0,
        "optimizer.name": "adamw", "pretrain.batch_size": 128, "pretrain.train_steps": 1_000_000},
    # ALE Table V, ELECTRA column: LAMB, batch 1024, 125k steps.
    "experiments/electra_small_lamb.gin": {
        **SMALL, **ELECTRA_LOSS, "objective.name": "electra", "optimizer.name": "lamb",
        "pretrain.batch_size": 1024, "pretrain.train_steps": 125_000},
    # ALE Table V, ALE column (162k steps); the generator samples at T = 0.8 (ALE, Section on ELECTRA & ALE).
    "experiments/ale_small.gin": {
        **SMALL, **ELECTRA_LOSS, "objective.name": "ale", "objective.temperature": 0.8, "optimizer.name": "lamb",
        "pretrain.batch_size": 1024, "pretrain.train_steps": 162_000},
    # ALE Table V, BERT column (163k steps).
    "experiments/bert_small.gin": {
        **SMALL, "objective.name": "bert", "objective.mlm_weight": 1.0, "optimizer.name": "lamb",
        "pretrain.batch_size": 1024, "pretrain.train_steps": 163_000},
    # SCRIPT Table 4 (Small), Table 2's caption (1M steps), Appendix (alpha = 50).
    "experiments/script_small.gin": {
        **SMALL, "objective.name": "script", "objective.disc_weight": 50.0, "objective.mlm_weight": 1.0,
        "optimizer.name": "adamw", "pretrain.batch_size": 128, "pretrain.train_steps": 1_000_000},
    # TEAMS Table 5 (Small): generator of half the depth, batch 256, 500K steps; Section 4.1 (sequence
    # length 512); Appendix B (lambda_1 = 5, lambda_2 = 2, 15% masking).
    "experiments/teams_small.gin": {
        **SMALL, "objective.name": "teams", "objective.generator_layer_fraction": 0.5, "objective.rtd_weight": 5.0,
        "objective.mws_weight": 2.0, "objective.mlm_weight": 1.0, "optimizer.name": "adamw",
        "pretrain.batch_size": 256, "pretrain.train_steps": 500_000, "pretrain.seq_length": 512},
    # SCRIPT Table 4 (Small, Base columns); TEAMS Table 5 (Large column).
    "models/small.gin": {k: v for k, v in SMALL.items() if k.startswith("encoder.")},
    "models/base.gin": {"encoder.num_layers": 12, "encoder.hidden_size": 768, "encoder.intermediate_size": 3072,
                        "encoder.num_heads": 12, "encoder.embedding_size": 768, "encoder.dropout_rate": 0.1,
                        "encoder.attention_dropout_rate": 0.1},
    "models/large.gin": {"encoder.num_layers": 24, "encoder.hidden_size": 1024, "encoder.intermediate_size": 4096,
                         "encoder.num_heads": 16, "encoder.embedding_size": 1024, "encoder.dropout_rate": 0.1,
                         "encoder.attention_dropout_rate": 0.1},
    # Fine-tuning, SCRIPT Table 5 (ELECTRA's recipe; ELECTRA-repro Table 6 agrees but for beta_2):
    # AdamW lr 3e-4 (Small), eps 1e-6, betas 0.9/0.999, layer-wise decay 0.8, warmup over 10% of the
    # steps, weight decay 0, dropout 0.1, batch 32, 3 epochs (10 for RTE and STS, 2 for SQuAD).
    "finetune/base.gin": {
        "finetune_optimizer.learning_rate": 3e-4, "finetune_optimizer.epsilon": 1e-6,
        "finetune_optimizer.beta_1": 0.9, "finetune_optimizer.beta_2": 0.999,
        "finetune_optimizer.layerwise_decay": 0.8, "finetune_optimizer.warmup_fraction": 0.1,
        "finetune_optimizer.weight_decay": 0.0, "finetune_optimizer.clip_norm": 1.0,
        "finetune.dropout_rate": 0.1, "finetune.batch_size": 32, "finetune.epochs": 3},
    "finetune/base_size.gin": {"finetune_optimizer.learning_rate": 1e-4},  # SCRIPT Table 5: 1e-4 for Base.
    "finetune/rte.gin": {"finetune.epochs": 10},
    "finetune/stsb.gin": {"finetune.epochs": 10},
    "finetune/squad_v1.gin": {"finetune.epochs": 2},
    "finetune/squad_v2.gin": {"finetune.epochs": 2},
}


def _effective(gin_file):
  """What a run of `gin_file` gets, by the keys of RECIPES: gin's bindings over the defaults."""
  gin.clear_config()
  try:
    if gin_file.startswith("experiments/"):
      gin_utils.parse([gin_file], ["DATA_DIR = 'unused'"])
    elif gin_file == "finetune/base_size.gin":
      gin_utils.parse(["finetune/base.gin", gin_file], [])  # Given after a task's file.
    else:
      gin_utils.parse([gin_file], [])
    values = {f"encoder.{k}": v for k, v in runs.configured_arguments(EncoderConfig).items()}
    if gin_file.startswith("experiments/"):
      values.update({f"optimizer.{k}": v
                     for k, v in runs.configured_arguments(optimization.create_optimizer).items()})
      values.update({f"masking.{k}": v for k, v in runs.configured_arguments(masking.MaskingConfig).items()})
      values.update({f"pretrain.{k}": gin_utils.bound_value(f"pretrain.{k}")
                     for k in ("train_steps", "batch_size", "seq_length")})
      cls = gin.query_parameter("pretrain.objective").configurable.wrapped
      values.update({f"objective.{k}": v for k, v in cls.resolve_arguments().items()})
      values["objective.name"] = cls.registry_name
    if gin_file.startswith("finetune/"):
      values.update({f"finetune_optimizer.{k}": v for k, v in
                     runs.configured_arguments(layerwise_decay.create_finetuning_optimizer).items()})
      values.update({f"finetune.{k}": v for k, v in runs.configured_arguments(runner.train_and_evaluate).items()})
    return values
  finally:
    gin.clear_config()


@pytest.mark.parametrize("gin_file, key, expected", [
    (gin_file, key, expected) for gin_file, table in RECIPES.items() for key, expected in sorted(table.items())])
def test_the_shipped_recipes_are_the_papers(gin_file, key, expected):
  assert _effective(gin_file)[key] == expected


def test_every_shipped_paper_recipe_is_in_the_table():
  shipped = {os.path.relpath(p, gin_utils.GIN_DIR) for p in glob.glob(os.path.join(gin_utils.GIN_DIR, "**/*.gin"),
                                                                        recursive=True)}
  recipes = {p for p in shipped if not any(fnmatch.fnmatch(p, pattern) for pattern in NOT_PAPER_RECIPES)}
  # pretrain.gin and objectives/*.gin hold no recipe of their own: each experiment above reads them.
  recipes -= {"pretrain.gin"} | {p for p in shipped if p.startswith("objectives/")}
  assert recipes <= set(RECIPES), sorted(recipes - set(RECIPES))


def _constructors():
  return {"MaskingConfig": masking.MaskingConfig, "create_optimizer": optimization.create_optimizer,
          **{cls.__name__: cls for cls in map(objectives.get, objectives.names())}}


def _bindings(gin_file):
  """{(configurable, parameter): value} of what `gin_file` (with its includes) binds to _constructors()."""
  gin.clear_config()
  try:
    gin_utils.parse([gin_file], [])
    return {(name, parameter): value for name, constructor in _constructors().items()
            for parameter, value in gin.get_bindings(constructor, resolve_references=False).items()}
  finally:
    gin.clear_config()


# Whatever builds an objective, a masking config or an optimizer without gin (tests, notebooks,
# benchmarks, tpu_electra.flops) gets the shipped recipe: each default equals what the shipped gin
# files bind, for every value they bind as a plain value.
@pytest.mark.parametrize("gin_file", [
    "objectives/bert.gin", "objectives/electra.gin", "objectives/script.gin", "objectives/teams.gin",
    "objectives/ale.gin", "pretrain.gin"])
def test_constructor_defaults_are_the_shipped_recipe(gin_file):
  constructors = _constructors()
  checked = 0
  for (configurable, parameter), value in _bindings(gin_file).items():
    if isinstance(value, gin.config.ConfigurableReference):
      continue  # A macro or a configurable: an experiment's value, not a default's.
    default = inspect.signature(constructors[configurable]).parameters[parameter].default
    assert default == value, f"{configurable}.{parameter}: default {default!r}, {gin_file} binds {value!r}"
    checked += 1
  assert checked


def test_pretraining_binds_its_clip_norm_in_gin():
  # A recipe value lives in gin, where run.json and operative_config.gin record it.
  assert _bindings("pretrain.gin")[("create_optimizer", "clip_norm")] == 1.0


@pytest.mark.parametrize("name", ["lamb", "adamw", "adam"])
def test_the_pretraining_clip_norm_reaches_the_optimizer(name):
  optimizer = optimization.create_optimizer(name=name, learning_rate=1e-3, train_steps=10, clip_norm=0.7)
  assert optimizer.global_clipnorm == 0.7


class _Classifier(tf.keras.Model):

  def __init__(self, config):
    super().__init__()
    self.encoder = TransformerEncoder(config)
    self.head = tf.keras.layers.Dense(2, name="head")

  def call(self, inputs):
    return self.head(self.encoder(inputs)["sequence_output"][:, 0])


def _classifier(config):
  model = _Classifier(config)
  ids = tf.constant([[2, 7, 9, 3]])
  model({"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": tf.zeros_like(ids)})
  return model


CONFIG = EncoderConfig(vocab_size=20, hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16,
                       max_position_embeddings=8, embedding_size=4)


def test_the_finetuning_clip_norm_reaches_the_optimizer():
  gin.clear_config()
  try:
    gin_utils.parse(["finetune/sst2.gin"], [])
    model = _classifier(CONFIG)
    optimizer = layerwise_decay.create_finetuning_optimizer(model, model.encoder, train_steps=10)
  finally:
    gin.clear_config()
  assert optimizer.global_clipnorm == 1.0


def test_finetuning_weight_decay_spares_exactly_the_layer_norms_and_biases():
  # Found by what the variables are (a LayerNormalization's weights, a layer's `bias`), as
  # test_optimization checks pretraining's optimizer.
  model = _classifier(CONFIG)
  rng = np.random.default_rng(0)
  for v in model.trainable_variables:  # Biases start at 0, which decay would leave at 0.
    v.assign(rng.uniform(0.5, 1.5, size=v.shape))
  spared = set()
  for layer in model.encoder.submodules + (model.head,):
    if isinstance(layer, tf.keras.layers.LayerNormalization):
      spared.update(id(w) for w in layer.weights)
    elif isinstance(getattr(layer, "bias", None), tf.Variable):
      spared.add(id(layer.bias))
  before = {id(v): v.numpy() for v in model.trainable_variables}
  optimizer = layerwise_decay.create_finetuning_optimizer(model, model.encoder, train_steps=100, learning_rate=0.1,
                                                          warmup_fraction=0.0, weight_decay=0.5)
  optimizer.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
  changed = {id(v) for v in model.trainable_variables if not np.array_equal(v.numpy(), before[id(v)])}
  assert 0 < len(spared) < len(model.trainable_variables)
  assert changed == {id(v) for v in model.trainable_variables} - spared


def test_the_generators_sampling_temperature_reaches_the_sampler(monkeypatch):
  # Every temperature the objective samples at is the one it was built with.
  temperatures = []
  original = sampling.sample_from_logits

  def recording(logits, temperature=1.0, seed=None):
    temperatures.append(temperature)
    return original(logits, temperature, seed=seed)

  monkeypatch.setattr(sampling, "sample_from_logits", recording)
  config = EncoderConfig(vocab_size=30, hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16,
                         max_position_embeddings=16, embedding_size=4)
  objective = electra.Electra(config, temperature=0.37)
  ids = tf.constant([[2, 7, 9, 11, 12, 3]] * 2)
  batch = masking.mask_tokens(ids, tf.ones_like(ids), masking.MaskingConfig(max_predictions_per_seq=2),
                              {"[PAD]": 0, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}, 30, seed=1)
  batch.update(input_ids=ids, input_mask=tf.ones_like(ids), segment_ids=tf.zeros_like(ids))
  objective(batch, training=True)
  assert temperatures and set(temperatures) == {0.37}


def test_sampling_follows_the_temperature_it_is_given():
  # softmax([0, log 3] / T): id 1 with probability 3^(1/T) / (1 + 3^(1/T)): 0.9 at T = 0.5, 0.634 at T = 2.
  logits = tf.tile(tf.constant([[0.0, np.log(3.0)]]), [20000, 1])
  for temperature in (0.5, 2.0):
    share = float(tf.reduce_mean(tf.cast(sampling.sample_from_logits(logits, temperature, seed=[1, 2]), tf.float32)))
    expected = 3 ** (1 / temperature) / (1 + 3 ** (1 / temperature))
    assert abs(share - expected) < 0.015, (temperature, share, expected)


def _shard_order(data_dir, seed, shards):
  """The training shards in the order the first epoch reads them: one record at a time, no permutation."""
  first_ids = {}
  for index, path in enumerate(shards):
    for record in tf.data.TFRecordDataset(path):
      example = tf.io.parse_single_example(record, {"input_ids": tf.io.FixedLenFeature([32], tf.int64)})
      first_ids[tuple(example["input_ids"].numpy())] = index
  dataset = pretraining.pretraining_dataset(data_dir=data_dir, global_batch_size=1, seq_length=32, seed=seed,
                                            shuffle_buffer_size=1, cycle_length=1)
  order = []
  for batch in dataset.take(len(first_ids)):
    index = first_ids[tuple(batch["input_ids"].numpy()[0])]
    if not order or order[-1] != index:
      order.append(index)
  return tuple(order)


def test_the_shard_order_depends_on_the_seed(tmp_path):
  data_dir = write_token_data(str(tmp_path / "data"), num_examples=16, num_shards=8, num_eval=0)
  shards = sorted(glob.glob(os.path.join(data_dir, "pretrain-*.tfrecord")))
  orders = {seed: _shard_order(data_dir, seed, shards) for seed in range(4)}
  assert all(sorted(order) == list(range(8)) for order in orders.values()), orders
  assert len(set(orders.values())) > 1, orders
  assert _shard_order(data_dir, 2, shards) == orders[2]
