"""latentjax: learn, look at, move through and transport latent spaces, in JAX.

Submodules are namespaces (``from latentjax import models, train``); heavy optional
dependencies (orbax, tfds, ott-jax) are imported only by the module that needs them.
"""

__version__ = "0.1.0"
