"""Pretraining objectives: each a Keras Model whose call(batch) returns a dict of losses and metrics."""
