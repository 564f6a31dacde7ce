"""TEAMS objective: candidate sets, MWS/RTD losses by hand, partial layer sharing, where gradients go."""
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import gin_utils
from tpu_electra.data import pretraining
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import losses, sampling, teams
from tpu_electra.training import optimization, trainer

VOCAB = 40
# Four layers: a generator of two, the bottom one shared; RTD branches off layer 3.
CONFIG = EncoderConfig(vocab_size=VOCAB, hidden_size=16, num_layers=4, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=16, dropout_rate=0.0, attention_dropout_rate=0.0)


def _log_softmax(x):
  shifted = x - x.max(-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize("strategy", teams.CANDIDATE_STRATEGIES)
def test_candidate_sets_hold_the_original_once_and_k_distinct_non_originals(strategy):
  rng = np.random.default_rng(0)
  vocab, k = 12, 5
  logits = rng.normal(scale=3.0, size=(64, 4, vocab)).astype(np.float32)
  originals = rng.integers(0, vocab, size=(64, 4))
  rows = np.arange(64)[:, None], np.arange(4)[None, :]
  # Rows where the generator is sure of the original, and rows where it is sure of one other
  # token: naive top-k or repeated sampling would then return the original or duplicates.
  logits[:16][rows[0][:16], rows[1], originals[:16]] += 50.0
  logits[16:32] = -1e9
  logits[16:32][rows[0][:16], rows[1], (originals[16:32] + 1) % vocab] = 0.0
  candidates = teams.candidate_sets(tf.constant(logits), tf.constant(originals), k, strategy).numpy()

  assert candidates.shape == (64, 4, k + 1)
  np.testing.assert_array_equal(candidates[..., 0], originals)
  np.testing.assert_array_equal((candidates == originals[..., None]).sum(-1), 1)
  assert all(len(set(row)) == k + 1 for row in candidates.reshape(-1, k + 1))
  assert candidates.min() >= 0 and candidates.max() < vocab


def test_hardest_candidates_are_the_top_k_non_original_logits():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(8, 3, 20)).astype(np.float32)
  originals = rng.integers(0, 20, size=(8, 3))
  candidates = teams.candidate_sets(tf.constant(logits), tf.constant(originals), 4, "hardest").numpy()
  for b in range(8):
    for p in range(3):
      ranked = [i for i in np.argsort(-logits[b, p]) if i != originals[b, p]]
      assert list(candidates[b, p, 1:]) == ranked[:4]


def test_sampled_candidates_follow_the_generator_softmax_renormalized_without_the_original():
  logits = np.array([2.0, 1.0, 0.0, -1.0, 0.5], np.float32)
  draws = 20000
  for temperature in (1.0, 2.0):
    ids = sampling.sample_without_replacement(tf.tile(logits[None], [draws, 1]), 2, tf.zeros([draws], tf.int32),
                                           temperature, seed=3).numpy()
    # The first draw is the softmax over the non-originals; the set never repeats an id.
    frequencies = np.bincount(ids[:, 0], minlength=5) / draws
    expected = np.exp(logits / temperature) * np.array([0, 1, 1, 1, 1])
    expected /= expected.sum()
    assert np.max(np.abs(frequencies - expected)) < 4 * np.sqrt(0.25 / draws) + 1e-3, (temperature, frequencies)
    assert np.all(ids[:, 0] != ids[:, 1])


def test_mws_loss_is_the_cross_entropy_of_the_original_among_its_candidates():
  logits = tf.constant([[[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [5.0, 5.0, 5.0]]])
  weights = tf.constant([[1.0, 1.0, 0.0]])  # the third position is padding
  loss, accuracy = teams.multi_word_selection_loss_and_accuracy(logits, weights)
  expected = -(_log_softmax(np.array([2.0, 1.0, 0.0]))[0] + _log_softmax(np.array([0.0, 3.0, 1.0]))[0]) / 2
  assert loss.numpy() == pytest.approx(expected, rel=1e-6)
  assert accuracy.numpy() == pytest.approx(0.5)
  # A tie is not a correct selection.
  _, tied = teams.multi_word_selection_loss_and_accuracy(tf.zeros([1, 1, 3]), tf.ones([1, 1]))
  assert tied.numpy() == 0.0


def _argmax_sample(logits, temperature=1.0, seed=None):
  del temperature, seed
  return tf.argmax(logits, axis=-1, output_type=tf.int32)


def test_losses_match_a_hand_computation(monkeypatch, make_batch):
  # "hardest" candidates and an argmax corruption make every input of the discriminator
  # reproducible; sampling is pinned by the tests above.
  monkeypatch.setattr(teams.sampling, "sample_from_logits", _argmax_sample)
  model = teams.Teams(CONFIG, candidate_strategy="hardest", num_candidates=3)
  batch = make_batch()
  outputs = model(batch, training=False)

  inputs = {"input_mask": batch["input_mask"], "input_type_ids": batch["segment_ids"]}
  generator = model.generator(dict(inputs, input_word_ids=batch["masked_input_ids"]), training=False)
  positions = batch["masked_lm_positions"]
  logits = model.mlm_head(generator["sequence_output"], masked_positions=positions).numpy()
  targets, weights = batch["masked_lm_ids"].numpy(), batch["masked_lm_weights"].numpy()
  mlm = -(np.take_along_axis(_log_softmax(logits), targets[..., None], -1)[..., 0] * weights).sum() / weights.sum()

  fake, labels = losses.corrupt_with_samples(batch["masked_input_ids"], batch["input_ids"], positions,
                                              batch["masked_lm_weights"], _argmax_sample(tf.constant(logits)))
  discriminator = model.discriminator(dict(inputs, input_word_ids=fake), training=False)

  # RTD (Eq. 4, 6) reads layer L - 1 = 3 through the branch's own transformer layer.
  hidden = discriminator["encoder_outputs"][2]
  hidden = model.rtd_layers[0]([hidden, model.rtd_attention_mask(hidden, batch["input_mask"])], training=False)
  z, y, m = model.rtd_head(hidden).numpy(), labels.numpy(), batch["input_mask"].numpy()
  rtd = ((np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))) * m).sum() / m.sum()

  # MWS (Eq. 7, 8): the last layer at each masked position, projected to E, dotted with the tied
  # embedding of the original and of the 3 most likely other tokens.
  h = tf.gather(discriminator["sequence_output"], positions, batch_dims=1)
  h = model.mws_head.layer_norm(model.mws_head.dense(h)).numpy()
  others = np.argsort(-np.where(np.eye(VOCAB)[targets] > 0, -np.inf, logits), axis=-1)[..., :3]
  candidates = np.concatenate([targets[..., None], others], -1)
  scores = np.einsum("bpe,bpce->bpc", h, model.embeddings.embedding_table.numpy()[candidates])
  mws = -(_log_softmax(scores)[..., 0] * weights).sum() / weights.sum()

  assert outputs["mlm_loss"].numpy() == pytest.approx(mlm, rel=1e-5)
  assert outputs["rtd_loss"].numpy() == pytest.approx(rtd, rel=1e-5)
  assert outputs["mws_loss"].numpy() == pytest.approx(mws, rel=1e-5)
  assert outputs["loss"].numpy() == pytest.approx(mlm + 5.0 * rtd + 2.0 * mws, rel=1e-5)
  selected = (scores[..., 0] > scores[..., 1:].max(-1)).astype(np.float32)
  assert outputs["mws_accuracy"].numpy() == pytest.approx((selected * weights).sum() / weights.sum(), rel=1e-6)
  replaced = np.take_along_axis(y, positions.numpy(), 1)
  assert outputs["replaced_fraction"].numpy() == pytest.approx((replaced * weights).sum() / weights.sum(), rel=1e-6)


def test_generator_bottom_layers_are_the_discriminators_own_layers(make_batch):
  model = teams.Teams(CONFIG)
  model(make_batch(), training=False)
  generator, discriminator = model.generator.transformer_layers, model.discriminator.transformer_layers
  assert (len(generator), len(discriminator), model.num_shared_layers) == (2, 4, 1)
  assert generator[0] is discriminator[0]
  assert all(g is not d for g in generator[1:] for d in discriminator)
  assert [id(v) for v in generator[0].weights] == [id(v) for v in discriminator[0].weights]
  assert model.generator.embeddings is model.discriminator.embeddings
  assert model.generator.embedding_projection is model.discriminator.embedding_projection
  # Same width as the discriminator (not ELECTRA's narrower generator).
  assert model.generator_config.hidden_size == CONFIG.hidden_size
  # The kept encoder is the MWS path: embeddings and all L discriminator layers.
  assert model.encoder is model.discriminator
  # "Full Tie" and "No Tie" are one knob away.
  full = teams.Teams(CONFIG, shared_layer_fraction=1.0)
  assert all(g is d for g, d in zip(full.generator.transformer_layers, full.discriminator.transformer_layers[:2]))
  untied = teams.Teams(CONFIG, shared_layer_fraction=0.0)
  assert untied.generator.transformer_layers[0] is not untied.discriminator.transformer_layers[0]


def test_parameter_count_matches_a_hand_count(make_batch):
  model = teams.Teams(CONFIG)
  model(make_batch(), training=False)
  v, e, h, i, p = VOCAB, 8, 16, 32, 16
  embeddings = v * e + p * e + 2 * e + 2 * e       # word, position, type, layer norm
  projection = e * h + h
  layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * (2 * h)  # Q K V O, FFN, two layer norms
  discriminator = embeddings + projection + 4 * layer
  generator_own = 1 * layer                       # two generator layers, the bottom one shared
  mlm_head = h * e + e + 2 * e + v                # dense, layer norm, output bias (table tied)
  rtd_branch = layer + (h * h + h) + (h + 1)      # own transformer layer, dense, logit
  mws_head = h * e + e + 2 * e                    # dense, layer norm (table tied, no bias)
  variables = model.trainable_variables
  assert len({id(x) for x in variables}) == len(variables)
  count = sum(int(np.prod(x.shape)) for x in variables)
  assert count == discriminator + generator_own + mlm_head + rtd_branch + mws_head == 14601
  assert sum(int(np.prod(x.shape)) for x in model.encoder.trainable_variables) == discriminator


def test_gradients_reach_only_what_each_loss_trains(make_batch):
  model = teams.Teams(CONFIG)
  batch = make_batch(seed=1)
  with tf.GradientTape(persistent=True) as tape:
    outputs = model(batch, training=True, seed=1)
  table = model.embeddings.embedding_table
  layers_d = model.discriminator.transformer_layers

  def own(layer_list):
    return [x for layer in layer_list for x in layer.trainable_variables if x is not table]

  groups = {
      "embeddings": model.embeddings.trainable_variables,
      "shared": own([layers_d[0], model.discriminator.embedding_projection]),
      "below_rtd_branch": own(layers_d[1:3]),
      "top_layer": own(layers_d[3:]),
      "generator_own": own(model.generator.transformer_layers[1:]),
      "mlm_head": own([model.mlm_head]),
      "rtd_branch": own(model.rtd_layers + [model.rtd_head]),
      "mws_head": own([model.mws_head]),
  }
  # The generator's output reaches the other losses only through its mlm_head: no gradient there
  # means none flows through the sampled replacement or the candidates into the generator. The
  # shared bottom layer and the embeddings learn from every loss, being part of the discriminator.
  reaches = {
      "mlm_loss": {"embeddings", "shared", "generator_own", "mlm_head"},
      "rtd_loss": {"embeddings", "shared", "below_rtd_branch", "rtd_branch"},
      "mws_loss": {"embeddings", "shared", "below_rtd_branch", "top_layer", "mws_head"},
  }
  names = [group for group, variables in groups.items() for _ in variables]
  everything = [x for variables in groups.values() for x in variables]
  assert len(everything) == len(model.trainable_variables)  # the groups cover the whole model
  for loss, expected in reaches.items():
    for group, grad in zip(names, tape.gradient(outputs[loss], everything)):
      assert (grad is not None) == (group in expected), (loss, group)
  # Nothing is built that the total loss does not train.
  assert all(g is not None for g in tape.gradient(outputs["loss"], model.trainable_variables))


def test_mixed_bfloat16_keeps_losses_metrics_and_candidate_sampling_in_float32(make_batch, outputs_under_mixed_bfloat16):
  outputs_under_mixed_bfloat16(lambda: teams.Teams(CONFIG), make_batch(seed=2))
  # bfloat16 logits (what the MLM head gives under mixed precision) are sampled in float32: no
  # dtype clash with the float32 Gumbel noise (tf-models' crash), and a clear winner always wins.
  logits = tf.cast(tf.constant([[0.0, 0.0, 20.0, 0.0]] * 1000), tf.bfloat16)
  ids = sampling.sample_without_replacement(logits, 1, tf.zeros([1000], tf.int32)).numpy()
  assert np.all(ids[:, 0] == 2)


def test_config_errors_are_refused_with_the_knob_named():
  with pytest.raises(ValueError, match="candidate_strategy"):
    teams.Teams(CONFIG, candidate_strategy="easiest")
  with pytest.raises(ValueError, match="num_rtd_layers"):
    teams.Teams(CONFIG, num_rtd_layers=4)
  with pytest.raises(ValueError, match="num_candidates"):
    teams.Teams(CONFIG, num_candidates=VOCAB)


def test_experiment_gin_sets_the_papers_small_hyper_parameters():
  import tpu_electra.pretrainer  # noqa: F401  pylint: disable=g-import-not-at-top  (registers every configurable)
  import gin  # pylint: disable=g-import-not-at-top
  try:
    gin_utils.parse(["experiments/teams_small.gin"], ["DATA_DIR = '/data'"])
    assert gin.query_parameter("pretrain.objective").selector.endswith("Teams")
    values = {name: gin.query_parameter(f"Teams.{name}") for name in (
        "generator_layer_fraction", "shared_layer_fraction", "num_rtd_layers", "num_candidates",
        "candidate_strategy", "rtd_weight", "mws_weight")}
    assert values == {"generator_layer_fraction": 0.5, "shared_layer_fraction": 0.5, "num_rtd_layers": 1,
                      "num_candidates": 5, "candidate_strategy": "sampled", "rtd_weight": 5.0, "mws_weight": 2.0}
    macros = {name: gin.query_parameter(f"%{name}") for name in (
        "TRAIN_STEPS", "BATCH_SIZE", "SEQ_LENGTH", "LEARNING_RATE", "WARMUP_STEPS")}
    assert macros == {"TRAIN_STEPS": 500000, "BATCH_SIZE": 256, "SEQ_LENGTH": 512, "LEARNING_RATE": 5e-4,
                      "WARMUP_STEPS": 10000}
    assert gin.query_parameter("create_optimizer.name") == "adamw"
    small = EncoderConfig().with_vocab_size(VOCAB)
    assert (small.num_layers, small.hidden_size, small.embedding_size) == (12, 256, 128)
    model = teams.Teams(small)
    assert (model.num_generator_layers, model.num_shared_layers) == (6, 3)
    gin_utils.clear()
    gin_utils.parse(["smoke/teams.gin"], [])
    assert gin.query_parameter("EncoderConfig.num_layers") == 4
  finally:
    gin_utils.clear()


def test_a_few_training_steps_on_token_data_give_a_finite_loss(token_data_dir):
  config = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=4, num_heads=2, intermediate_size=32,
                         embedding_size=8, max_position_embeddings=32)
  model = teams.Teams(config)
  optimizer = optimization.create_optimizer(name="adamw", learning_rate=1e-2, train_steps=10, warmup_steps=0)
  iterator = iter(pretraining.pretraining_dataset(token_data_dir, global_batch_size=8, seq_length=32,
                                                  shuffle_buffer_size=64, seed=0))
  trainer.build_variables(model, optimizer, tf.distribute.get_strategy(), next(iterator))
  shared = model.discriminator.transformer_layers[0].trainable_variables[0]
  shared_before = shared.numpy()

  # One traced step (graph mode, as on an accelerator); the trainer's own loop is tested elsewhere
  # and costs several times this to trace.
  @tf.function
  def train_step(batch):
    with tf.GradientTape() as tape:
      outputs = model(batch, training=True)
    grads = tape.gradient(outputs["loss"], model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return outputs

  losses = [float(train_step(next(iterator))["loss"]) for _ in range(3)]
  assert all(np.isfinite(losses)), losses
  assert int(optimizer.iterations.numpy()) == 3
  # The shared layer is one set of variables for both networks, and it learned.
  assert shared is model.generator.transformer_layers[0].trainable_variables[0]
  assert not np.allclose(shared.numpy(), shared_before)
