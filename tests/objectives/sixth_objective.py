"""A sixth objective, defined outside the library: replaced-token detection on uniformly random
replacements (no generator). Registering it is all it takes for gin, the FLOPs counter, TRAIN_FLOPS,
the benchmarks, pretraining, export and evaluation (tests/objectives/test_sixth_objective.py)."""
import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import objectives
from tpu_electra.modeling import ReplacedTokenDetectionHead, TransformerEncoder, costs, encoder_inputs
from tpu_electra.objectives import losses, sampling


@objectives.register("random_rtd")
class RandomReplacementDetection(objectives.PretrainingObjective, objectives.ReplacedTokenDetector):
  """Masked positions get uniformly random tokens; the encoder learns to tell which tokens were replaced."""

  def __init__(self, encoder_config, rtd_weight: float = 1.0, name: str = "random_rtd"):
    super().__init__(encoder_config, name=name)
    self.rtd_weight = rtd_weight
    self.discriminator = TransformerEncoder(encoder_config, name="discriminator")
    self.rtd_head = ReplacedTokenDetectionHead(encoder_config.hidden_size, activation=encoder_config.activation,
                                               initializer_range=encoder_config.initializer_range)

  @classmethod
  def training_costs(cls, encoder_config, seq_length, num_predictions, arguments):
    return [costs.Cost("sampling", costs.sampling_flops(encoder_config, num_predictions), trained=False),
            costs.encoder_cost("discriminator", encoder_config, seq_length),
            costs.Cost("rtd_head", costs.token_classifier_flops(encoder_config, seq_length))]

  @property
  def encoder(self):
    return self.discriminator

  def detector_logits(self, encoder_output, input_mask, training=None):
    return self.rtd_head(encoder_output["sequence_output"])

  def detector_layers(self):
    return [self.rtd_head]

  def electra_discriminator_head(self):
    return self.rtd_head

  def call(self, batch, training=None, with_detection=False):
    positions = batch["masked_lm_positions"]
    uniform = tf.zeros(tf.concat([tf.shape(positions), [self.encoder_config.vocab_size]], axis=0))
    fake_ids, labels = losses.sample_and_corrupt(uniform, batch, 1.0, sampling.noise_seed(batch))
    output = self.discriminator(encoder_inputs(batch, fake_ids), training=training)
    logits = self.detector_logits(output, batch["input_mask"], training=training)
    rtd_loss = losses.replaced_token_detection_loss(logits, labels, batch["input_mask"])
    outputs = {"loss": self.rtd_weight * rtd_loss, "rtd_loss": rtd_loss}
    outputs.update(losses.detection_report(logits, labels, batch, with_detection))
    return outputs
