"""Training on Lightning and Hydra: the Lightning module, its callbacks, resuming, and the job behind ``train.py``."""
