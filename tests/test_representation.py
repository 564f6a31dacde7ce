"""Representation health measures: their defining properties, batch merging, and the graph's sums."""
import numpy as np
import pytest

import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import representation_health as health
from tpu_electra.modeling import EncoderConfig, TransformerEncoder


def _brute_force_cosine(x):
  units = x / np.linalg.norm(x, axis=1, keepdims=True)
  similarity = units @ units.T
  n = len(x)
  return (similarity.sum() - np.trace(similarity)) / (n * (n - 1))


def test_identical_vectors_have_cosine_one_and_effective_rank_one():
  x = np.tile(np.array([[0.3, -1.2, 2.0, 0.7]]), (50, 1))
  assert health.mean_pairwise_cosine(x) == pytest.approx(1.0, abs=1e-12)
  assert health.effective_rank(x) == pytest.approx(1.0, abs=1e-6)


def test_isotropic_gaussian_has_full_effective_rank_and_cosine_near_zero():
  d = 16
  x = np.random.default_rng(0).normal(size=(50000, d))
  assert d - 0.05 < health.effective_rank(x) <= d
  assert abs(health.mean_pairwise_cosine(x)) < 1e-3


@pytest.mark.parametrize("k", [1, 3, 7])
def test_rank_k_cloud_has_effective_rank_k(k):
  rng = np.random.default_rng(k)
  d = 24
  basis, _ = np.linalg.qr(rng.normal(size=(d, k)))  # k orthonormal directions in d dimensions.
  x = rng.normal(size=(40000, k)) @ basis.T
  assert health.effective_rank(x) == pytest.approx(k, abs=0.03 * k)


def test_a_spectrum_of_unequal_variances_gives_the_entropy_of_its_shares():
  assert health.spectrum_effective_rank([4.0, 4.0, 0.0]) == pytest.approx(2.0)
  p = np.array([3.0, 1.0]) / 4.0
  assert health.spectrum_effective_rank([3.0, 1.0, -1e-18]) == pytest.approx(np.exp(-np.sum(p * np.log(p))))
  assert health.spectrum_effective_rank([0.0, 0.0]) == 1.0


def test_both_measures_are_invariant_to_scaling():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8)) + rng.normal(size=8)
  for scale in (1e-3, 7.0, 1e4):
    assert health.effective_rank(scale * x) == pytest.approx(health.effective_rank(x), rel=1e-9)
    assert health.mean_pairwise_cosine(scale * x) == pytest.approx(health.mean_pairwise_cosine(x), rel=1e-9)
  # The cosine does not see any token's own length either.
  lengths = rng.uniform(0.1, 10.0, size=(300, 1))
  assert health.mean_pairwise_cosine(lengths * x) == pytest.approx(health.mean_pairwise_cosine(x), rel=1e-9)


def test_cosine_averages_pairs_of_distinct_tokens_only():
  # Two orthogonal tokens: their one pair has cosine 0 (with each token's pair with itself, it would be 0.5).
  assert health.mean_pairwise_cosine(np.eye(2)) == pytest.approx(0.0, abs=1e-15)
  x = np.random.default_rng(2).normal(size=(40, 5)) + 0.5
  assert health.mean_pairwise_cosine(x) == pytest.approx(_brute_force_cosine(x), rel=1e-12)
  with pytest.raises(ValueError, match="at least 2 vectors"):
    health.mean_pairwise_cosine(x[:1])


def test_masked_rows_are_left_out():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(30, 6))
  mask = rng.random(30) < 0.6
  garbage = np.where(mask[:, None], x, 1e6)
  assert health.effective_rank(garbage, mask) == pytest.approx(health.effective_rank(x[mask]), rel=1e-12)
  assert health.mean_pairwise_cosine(garbage, mask) == pytest.approx(health.mean_pairwise_cosine(x[mask]), rel=1e-12)


def test_merged_moments_equal_the_moments_of_the_union_even_with_a_large_common_mean():
  rng = np.random.default_rng(4)
  # Spread of 1e-3 around a mean of 1e3: Σxxᵀ - n·mean·meanᵀ would lose it, the pairwise merge keeps it.
  parts = [1e3 + 1e-3 * rng.normal(size=(n, 5)) @ np.diag([1.0, 2.0, 3.0, 4.0, 5.0]) for n in (7, 120, 1, 64)]
  merged = health.Moments.of(parts[0])
  for part in parts[1:]:
    merged = merged.merge(health.Moments.of(part))
  union = health.Moments.of(np.concatenate(parts))
  assert merged.count == union.count
  np.testing.assert_allclose(merged.mean, union.mean, rtol=1e-14)
  np.testing.assert_allclose(merged.scatter, union.scatter, rtol=1e-6, atol=1e-14)
  np.testing.assert_allclose(merged.unit_sum, union.unit_sum, rtol=1e-12)
  assert merged.effective_rank() == pytest.approx(union.effective_rank(), rel=1e-6)
  assert merged.mean_cosine() == pytest.approx(union.mean_cosine(), rel=1e-12)
  # An empty set (a replica with only padding) changes nothing.
  empty = health.Moments.of(np.zeros((4, 5)), np.zeros(4))
  assert empty.merge(union).scatter.tolist() == union.scatter.tolist()
  assert union.merge(empty).effective_rank() == union.effective_rank()


def test_graph_sums_of_padded_batches_merge_to_the_float64_measures():
  rng = np.random.default_rng(5)
  batches = [rng.normal(size=(3, 10, 8)).astype(np.float32) + 2.0 for _ in range(3)]
  masks = [(rng.random((3, 10)) < 0.7).astype(np.int32) for _ in range(3)]
  merged = None
  for vectors, mask in zip(batches, masks):
    sums = {k: v.numpy()[np.newaxis] for k, v in health.batch_moments(tf.constant(vectors), tf.constant(mask)).items()}
    merged = health.merge_all(sums, merged)
  rows = np.concatenate([b.reshape(-1, 8) for b in batches])
  keep = np.concatenate([m.reshape(-1) for m in masks])
  assert merged.count == keep.sum()
  assert merged.effective_rank() == pytest.approx(health.effective_rank(rows, keep), rel=1e-5)
  assert merged.mean_cosine() == pytest.approx(health.mean_pairwise_cosine(rows, keep), rel=1e-5)


def test_encoder_moments_cover_the_embedding_and_every_layer_on_the_original_ids():
  tf.keras.utils.set_random_seed(0)
  config = EncoderConfig(vocab_size=30, hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32,
                         embedding_size=8, max_position_embeddings=16)
  encoder = TransformerEncoder(config)
  ids = np.array([[2, 7, 8, 9, 3, 0, 0, 0], [2, 11, 12, 3, 13, 14, 3, 0]], np.int32)
  batch = {"input_ids": tf.constant(ids), "input_mask": tf.constant((ids > 0).astype(np.int32)),
           "segment_ids": tf.zeros_like(ids), "masked_input_ids": tf.fill(ids.shape, 4)}
  moments = {name: health.merge_all({k: v.numpy()[np.newaxis] for k, v in sums.items()})
             for name, sums in health.encoder_moments(encoder, batch).items()}
  assert sorted(moments) == ["embedding", "layer_0", "layer_1", "layer_2"]
  output = encoder({"input_word_ids": ids, "input_mask": ids > 0, "input_type_ids": np.zeros_like(ids)})
  real = ids.reshape(-1) > 0
  final = output["sequence_output"].numpy().reshape(-1, 16)
  assert moments["layer_2"].count == real.sum() == 12
  assert moments["layer_2"].effective_rank() == pytest.approx(health.effective_rank(final, real), rel=1e-4)
  embedded = output["embedding_output"].numpy().reshape(-1, 8)
  assert moments["embedding"].mean_cosine() == pytest.approx(health.mean_pairwise_cosine(embedded, real), rel=1e-4)

  metrics = health.summarize(moments)
  parts = ["embedding", "layer_0", "layer_1", "layer_2", "final"]
  assert sorted(metrics) == sorted(f"health/{m}_{p}" for m in ("cosine", "effective_rank") for p in parts)
  assert metrics["health/effective_rank_final"] == metrics["health/effective_rank_layer_2"]
  assert all(1.0 <= metrics[f"health/effective_rank_{p}"] <= 16 for p in parts)


def test_no_batches_summarize_to_no_metrics():
  # A held-out split smaller than one batch yields no batches; evaluation then reports nothing rather than failing.
  assert health.summarize({}) == {}
