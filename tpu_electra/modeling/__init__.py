"""Encoder networks and task heads, built on official.nlp.modeling layers. No objective logic here."""
from tpu_electra.modeling.config import EncoderConfig
from tpu_electra.modeling.encoder import Embeddings, TransformerEncoder, encoder_inputs
from tpu_electra.modeling.heads import MultiWordSelectionHead, ReplacedTokenDetectionHead, masked_lm_head
