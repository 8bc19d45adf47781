"""Learn a latent space: models, training, checkpoints, run folders, scale.

A package of modules (``from latentjax.learn import models, train``), lowest layer first:
``models`` (the VAEs; ``_config``, ``_networks``, ``_conv``, ``_onednn`` behind it), ``state`` (the
trainers' ``TrainState`` and keys), ``checkpoint`` (orbax), ``runs`` (run folders, the epoch loop),
``loop`` (the loop every trainer runs), ``tuning`` (measured defaults), ``train`` (one model),
``distributed`` (devices, meshes, processes), ``parallel`` (data parallel), ``population`` (K models).
"""
