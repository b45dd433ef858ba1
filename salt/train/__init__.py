"""Training, evaluation and prediction on Lightning and Hydra."""
