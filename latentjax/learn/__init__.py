"""Learn a latent space: models, training, checkpoints, run folders, scale."""
