"""The objective contract: registry, recorded arguments, costs, capabilities."""
import gin
import pytest

from tpu_electra import objectives
from tpu_electra.modeling import EncoderConfig
from tpu_electra.objectives import ale, bert, electra, script, teams

CONFIG = EncoderConfig(vocab_size=60, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position_embeddings=32)


def test_the_five_are_registered_in_order_and_found_by_name_class_or_instance():
  assert objectives.names()[:5] == ["bert", "electra", "ale", "teams", "script"]
  assert objectives.get("teams") is teams.Teams and objectives.class_of("ale") is ale.Ale
  model = script.Script(CONFIG)
  assert objectives.class_of(model) is script.Script and objectives.class_of(script.Script) is script.Script
  with pytest.raises(ValueError, match="unknown objective 'gpt'; choose one of bert, electra"):
    objectives.get("gpt")


def test_arguments_are_recorded_resolved_and_the_outermost_class_wins():
  model = ale.Ale(CONFIG, rtd_weight=20.0)
  assert model.arguments == {"generator_fraction": 0.25, "mlm_weight": 1.0, "rtd_weight": 20.0,
                             "temperature": 0.8, "name": "ale"}
  # The encoder config is the one built: ALE forces cross-layer sharing.
  assert model.encoder_config.share_layers and model.encoder.config.share_layers
  gin.clear_config()
  try:
    gin.parse_config("Electra.temperature = 0.8")
    assert electra.Electra(CONFIG).arguments["temperature"] == 0.8
    assert electra.Electra.resolve_arguments({"rtd_weight": 5.0}) == {
        "generator_fraction": 0.25, "mlm_weight": 1.0, "rtd_weight": 5.0, "temperature": 0.8, "name": "electra"}
  finally:
    gin.clear_config()


def test_capabilities_are_declared_interfaces():
  rtd, mlm, scorer = objectives.ReplacedTokenDetector, objectives.MaskedLanguageModel, objectives.OnePassScorer
  for model, capabilities in ((bert.Bert(CONFIG), {mlm}), (electra.Electra(CONFIG), {rtd, mlm}),
                              (ale.Ale(CONFIG), {rtd, mlm}), (teams.Teams(CONFIG), {rtd, mlm}),
                              (script.Script(CONFIG), {mlm, scorer})):
    assert {c for c in (rtd, mlm, scorer) if isinstance(model, c)} == capabilities, type(model).__name__
  electra_model, teams_model = electra.Electra(CONFIG), teams.Teams(CONFIG)
  assert electra_model.electra_discriminator_head() is electra_model.rtd_head
  assert teams_model.electra_discriminator_head() is None  # Its RTD branch has a layer of its own.
  assert electra_model.masked_lm() == (electra_model.generator, electra_model.mlm_head)
  bert_model = bert.Bert(CONFIG)
  assert bert_model.masked_lm() == (bert_model.encoder, bert_model.mlm_head)


def test_a_capability_without_its_methods_is_refused_at_registration():
  with pytest.raises(TypeError, match="is a ReplacedTokenDetector but does not define detector_logits"):
    @objectives.register("half_detector")
    class HalfDetector(bert.Bert, objectives.ReplacedTokenDetector):  # pylint: disable=unused-variable
      training_costs = bert.Bert.training_costs

      def detector_layers(self):
        return []
  assert "half_detector" not in objectives.names()
