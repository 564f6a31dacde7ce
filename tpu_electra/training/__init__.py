"""Strategies, optimizers, the train loop and checkpoints. Never names an objective."""
