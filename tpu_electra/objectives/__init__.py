"""Pretraining objectives: each a Keras Model whose call(batch) returns a dict of losses and metrics.

Importing this package registers every objective with gin (one import line per objective module).
"""
from tpu_electra.objectives import electra  # noqa: F401
from tpu_electra.objectives import teams  # noqa: F401
from tpu_electra.objectives import bert  # noqa: F401
from tpu_electra.objectives import ale  # noqa: F401
from tpu_electra.objectives import script  # noqa: F401
