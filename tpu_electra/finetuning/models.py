"""Task models: a pretrained encoder plus a head from `tpu_electra.modeling.task_heads`.

Every model takes a batch dict with the encoder's inputs (`input_word_ids`, `input_mask`,
`input_type_ids`) and the task's labels, and has two entry points:

- `call(batch, training)` → dict of scalar tensors with a "loss" entry (what
  `tpu_electra.training.trainer.make_train_loop` trains on) and a training metric;
- `task_outputs(batch, training=False)` → dict of per-example float32 outputs (logits, scores)
  that evaluation turns into predictions.

Label conventions are those of the feature converters in `tpu_electra.finetuning`: positions or
examples without a label carry `features.IGNORE_LABEL` (-1) and weigh nothing in the loss.
"""
from typing import Dict

import tensorflow as tf

from tpu_electra.finetuning import features
from tpu_electra.modeling import task_heads
from tpu_electra.objectives import losses

ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


def _sparse_cross_entropy(logits, labels):
  """Mean cross-entropy and accuracy over entries whose label is not IGNORE_LABEL."""
  labels = tf.cast(labels, tf.int32)
  weights = tf.cast(tf.not_equal(labels, features.IGNORE_LABEL), tf.float32)
  safe_labels = tf.maximum(labels, 0)
  per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
  correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), safe_labels), tf.float32)
  return losses.weighted_mean(per_example, weights), losses.weighted_mean(correct, weights)


class TaskModel(tf.keras.Model):
  """Shared plumbing: the encoder, no symbolic build trace, loss from `task_outputs`."""

  def __init__(self, encoder: tf.keras.Model, name: str, **kwargs):
    super().__init__(name=name, **kwargs)
    self.encoder = encoder

  def build(self, input_shape=None):
    # Sub-layers build on first use; a symbolic trace of `call` just to build would only cost time.
    self.built = True

  def task_outputs(self, batch, training=None) -> Dict[str, tf.Tensor]:
    raise NotImplementedError

  def sequence_output(self, batch, training=None) -> tf.Tensor:
    """The encoder's last layer [B, L, H] for the batch's `input_word_ids`, `input_mask`, `input_type_ids`."""
    return self.encoder({name: batch[name] for name in ENCODER_INPUTS}, training=training)["sequence_output"]

  def losses_and_metrics(self, batch, outputs) -> Dict[str, tf.Tensor]:
    raise NotImplementedError

  def call(self, batch, training=None):
    return self.losses_and_metrics(batch, self.task_outputs(batch, training=training))



class ClassificationModel(TaskModel):
  """Sentence (pair) classification: softmax cross-entropy on the [CLS] head's logits."""

  def __init__(self, encoder, num_labels: int, dropout_rate: float = 0.1, name: str = "classifier", **kwargs):
    super().__init__(encoder, name=name, **kwargs)
    config = encoder.config
    self.head = task_heads.ClassificationHead(num_labels, config.hidden_size, config.activation, dropout_rate,
                                              config.initializer_range)

  def task_outputs(self, batch, training=None):
    sequence = self.sequence_output(batch, training)
    return {"logits": self.head(sequence, training=training)}

  def losses_and_metrics(self, batch, outputs):
    loss, accuracy = _sparse_cross_entropy(outputs["logits"], batch["label_ids"])
    return {"loss": loss, "accuracy": accuracy}


class RegressionModel(TaskModel):
  """Score regression (STS-B): mean squared error of the [CLS] head's single output."""

  def __init__(self, encoder, dropout_rate: float = 0.1, name: str = "regressor", **kwargs):
    super().__init__(encoder, name=name, **kwargs)
    config = encoder.config
    self.head = task_heads.ClassificationHead(1, config.hidden_size, config.activation, dropout_rate,
                                              config.initializer_range)

  def task_outputs(self, batch, training=None):
    sequence = self.sequence_output(batch, training)
    return {"scores": tf.squeeze(self.head(sequence, training=training), axis=-1)}

  def losses_and_metrics(self, batch, outputs):
    error = outputs["scores"] - tf.cast(batch["label_ids"], tf.float32)
    return {"loss": tf.reduce_mean(tf.square(error)), "mean_abs_error": tf.reduce_mean(tf.abs(error))}


class SpanModel(TaskModel):
  """Extractive QA: cross-entropy of the start and end positions, averaged (BERT, ELECTRA).

  Unanswerable windows are trained to point at [CLS] (position 0), which is where the SQuAD 2.0
  decoder reads the null score.
  """

  def __init__(self, encoder, name: str = "span_model", **kwargs):
    super().__init__(encoder, name=name, **kwargs)
    self.head = task_heads.SpanHead(encoder.config.initializer_range)

  def task_outputs(self, batch, training=None):
    sequence = self.sequence_output(batch, training)
    start_logits, end_logits = self.head(sequence, batch["input_mask"])
    return {"start_logits": start_logits, "end_logits": end_logits}

  def losses_and_metrics(self, batch, outputs):
    start_loss, start_accuracy = _sparse_cross_entropy(outputs["start_logits"], batch["start_positions"])
    end_loss, end_accuracy = _sparse_cross_entropy(outputs["end_logits"], batch["end_positions"])
    return {"loss": (start_loss + end_loss) / 2.0, "span_accuracy": (start_accuracy + end_accuracy) / 2.0}


class TaggingModel(TaskModel):
  """Token classification: cross-entropy at labelled positions (each word's first sub-token)."""

  def __init__(self, encoder, num_labels: int, dropout_rate: float = 0.1, name: str = "tagger", **kwargs):
    super().__init__(encoder, name=name, **kwargs)
    self.head = task_heads.TaggingHead(num_labels, dropout_rate, encoder.config.initializer_range)

  def task_outputs(self, batch, training=None):
    sequence = self.sequence_output(batch, training)
    return {"logits": self.head(sequence, training=training)}

  def losses_and_metrics(self, batch, outputs):
    loss, accuracy = _sparse_cross_entropy(outputs["logits"], batch["label_ids"])
    return {"loss": loss, "token_accuracy": accuracy}


class MultipleChoiceModel(TaskModel):
  """Multiple choice (RACE): inputs [B, C, L]; softmax cross-entropy over the C option scores."""

  def __init__(self, encoder, num_choices: int, dropout_rate: float = 0.1, name: str = "multiple_choice", **kwargs):
    super().__init__(encoder, name=name, **kwargs)
    config = encoder.config
    self.num_choices = num_choices
    self.head = task_heads.MultipleChoiceHead(num_choices, config.hidden_size, config.activation, dropout_rate,
                                              config.initializer_range)

  def task_outputs(self, batch, training=None):
    flat = {name: tf.reshape(batch[name], [-1, tf.shape(batch[name])[-1]]) for name in ENCODER_INPUTS}
    sequence = self.encoder(flat, training=training)["sequence_output"]
    return {"logits": self.head(sequence, training=training)}

  def losses_and_metrics(self, batch, outputs):
    loss, accuracy = _sparse_cross_entropy(outputs["logits"], batch["label_ids"])
    return {"loss": loss, "accuracy": accuracy}
