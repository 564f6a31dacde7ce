"""BERT: masked-language modelling with a tied output layer, and optional next-sentence prediction.

Devlin et al. 2019. The MLM loss is the mean cross-entropy over the masked positions; with
`next_sentence_prediction=True` a pooler (dense + tanh on [CLS]) and a 2-way classifier add the
mean NSP cross-entropy. ELECTRA's BERT baselines, and RoBERTa, train without NSP, hence the default.
"""
from typing import Dict, Optional

import tensorflow as tf

from tpu_electra.modeling import EncoderConfig, TransformerEncoder, encoder_inputs, masked_lm_head
from tpu_electra.modeling import costs
from tpu_electra.objectives import losses
from tpu_electra.objectives.base import MaskedLanguageModel, PretrainingObjective, register

NEXT_SENTENCE_LABELS = "next_sentence_labels"


def next_sentence_loss_and_accuracy(logits, labels):
  """Mean cross-entropy and accuracy of the 2-way "is B the sentence after A?" classifier; float32.

  Labels follow the data manifest: 0 = B follows A, 1 = B is random.
  """
  logits = tf.cast(logits, tf.float32)
  labels = tf.cast(labels, tf.int32)
  loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
  accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32))
  return loss, accuracy


class NextSentenceHead(tf.keras.layers.Layer):
  """BERT's pooler (dense + tanh on the [CLS] token) and a 2-way classifier on it."""

  def __init__(self, hidden_size: int, initializer_range: float = 0.02, name: str = "nsp_head"):
    super().__init__(name=name)
    # One initializer instance per layer: a shared instance would give both layers the same draws.
    def init():
      return tf.keras.initializers.TruncatedNormal(stddev=initializer_range)
    self.pooler = tf.keras.layers.Dense(hidden_size, activation="tanh", kernel_initializer=init(), name="pooler")
    self.classifier = tf.keras.layers.Dense(2, kernel_initializer=init(), name="classifier")

  def call(self, sequence_output):
    return self.classifier(self.pooler(sequence_output[:, 0]))


@register("bert")
class Bert(PretrainingObjective, MaskedLanguageModel):
  """One encoder with a tied MLM head (and an NSP head only when asked for)."""

  def __init__(self, encoder_config: EncoderConfig, next_sentence_prediction: bool = False,
               mlm_weight: float = 1.0, nsp_weight: float = 1.0, name: str = "bert"):
    super().__init__(encoder_config, name=name)
    self.next_sentence_prediction = next_sentence_prediction
    self.mlm_weight = mlm_weight
    self.nsp_weight = nsp_weight
    self.bert_encoder = TransformerEncoder(encoder_config, name="encoder")
    self.mlm_head = masked_lm_head(self.bert_encoder.embeddings, activation=encoder_config.activation)
    # Built only when trained: an unused pooler would sit in every checkpoint and make Keras warn
    # that its gradients do not exist.
    self.nsp_head = None
    if next_sentence_prediction:
      self.nsp_head = NextSentenceHead(encoder_config.hidden_size, encoder_config.initializer_range)

  @classmethod
  def training_costs(cls, encoder_config, seq_length, num_predictions, arguments):
    parts = [costs.encoder_cost("encoder", encoder_config, seq_length),
             costs.Cost("mlm_head", costs.masked_lm_head_flops(encoder_config, num_predictions))]
    if arguments["next_sentence_prediction"]:
      parts.append(costs.Cost("nsp_head", costs.next_sentence_flops(encoder_config)))
    return parts

  @property
  def encoder(self) -> TransformerEncoder:
    return self.bert_encoder

  def masked_lm(self):
    return self.bert_encoder, self.mlm_head

  def call(self, batch, training: Optional[bool] = None, with_detection: bool = False) -> Dict[str, tf.Tensor]:
    del with_detection  # No replaced-token detection: nothing to add for evaluation.
    encoder_output = self.bert_encoder(encoder_inputs(batch, batch["masked_input_ids"]), training=training)
    sequence_output = encoder_output["sequence_output"]
    mlm_logits = self.mlm_head(sequence_output, masked_positions=batch["masked_lm_positions"])
    mlm_loss, mlm_accuracy = losses.masked_lm_loss_and_accuracy(
        mlm_logits, batch["masked_lm_ids"], batch["masked_lm_weights"])
    outputs = {"loss": self.mlm_weight * mlm_loss, "mlm_loss": mlm_loss, "mlm_accuracy": mlm_accuracy}
    if self.nsp_head is not None:
      if NEXT_SENTENCE_LABELS not in batch:
        raise ValueError("Bert.next_sentence_prediction = True but the batch has no next_sentence_labels: build the "
                         "data with next-sentence pairs, or set Bert.next_sentence_prediction = False")
      nsp_loss, nsp_accuracy = next_sentence_loss_and_accuracy(
          self.nsp_head(sequence_output), batch[NEXT_SENTENCE_LABELS])
      outputs["loss"] += self.nsp_weight * nsp_loss
      outputs.update(nsp_loss=nsp_loss, nsp_accuracy=nsp_accuracy)
    return outputs
