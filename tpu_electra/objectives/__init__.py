"""Pretraining objectives: each a Keras Model whose call(batch) returns a dict of losses and metrics.

Importing this package registers the built-in objectives (one import line per module; an objective
defined elsewhere registers itself with `@tpu_electra.objectives.register(name)` when its module is
imported, e.g. by an `import` line of a gin file). See base.py for what an objective declares.
"""
from tpu_electra.objectives.base import (CAPABILITIES, DETECTION, GeneratorDiscriminator,  # noqa: F401
                                         MaskedLanguageModel, OnePassScorer, PretrainingObjective,
                                         ReplacedTokenDetector, class_of, get, names, register)
from tpu_electra.objectives import bert  # noqa: F401
from tpu_electra.objectives import electra  # noqa: F401
from tpu_electra.objectives import ale  # noqa: F401
from tpu_electra.objectives import teams  # noqa: F401
from tpu_electra.objectives import script  # noqa: F401
