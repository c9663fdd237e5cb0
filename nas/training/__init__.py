"""Training stage: data sources and loaders, the training loop (a ``Trainer``: set-up,
epochs, evaluation, checkpoints), the run ``nas.train``'s options describe, checkpoints,
fine-tuning from a parent, and the Ray Tune trainable that runs one trial."""
