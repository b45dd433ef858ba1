"""Inference on trained runs: rebuilding the network from a run, scoring it per image (``eval.py``),
segmenting folders of images (``predict.py``). Nothing here imports the training loop; training's test step
uses :mod:`salt.inference.evaluation`."""
