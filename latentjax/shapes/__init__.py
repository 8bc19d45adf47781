"""Shape latent spaces: exact SDFs, procedural furniture, DeepSDF, rendering."""
