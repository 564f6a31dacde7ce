"""ALE, "A Lite ELECTRA": ELECTRA whose generator and discriminator are ALBERT encoders.

From the ALE/BERT/ELECTRA comparison (Table V): factorized embeddings (E = 128 with H = 256 in the
small model, from EncoderConfig.embedding_size) and one transformer layer's weights applied at every
depth, in the generator and in the discriminator. Everything else (shared embeddings, the 1/4-width
generator, loss = MLM + 50 RTD, sampling temperature) is ELECTRA's. Sharing saves parameters, not
compute: ALE-small costs the FLOPs of ELECTRA-small per step.
"""
import dataclasses

from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives.base import register
from tpu_electra.objectives.electra import Electra


@register("ale")
class Ale(Electra):
  """ELECTRA with cross-layer parameter sharing forced on, whatever the encoder config says."""

  def __init__(self, encoder_config: EncoderConfig, generator_fraction: float = 0.25,
               mlm_weight: float = 1.0, rtd_weight: float = 50.0, temperature: float = 0.8,
               name: str = "ale"):
    super().__init__(dataclasses.replace(encoder_config, share_layers=True),
                     generator_fraction=generator_fraction, mlm_weight=mlm_weight, rtd_weight=rtd_weight,
                     temperature=temperature, name=name)

  # A layer shared across depths still runs at every depth: ALE costs what ELECTRA costs.
  training_costs = Electra.training_costs
