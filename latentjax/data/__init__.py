"""Data in: offline data sets by name, generated sprites, image folders, one epoch order.

One namespace (``data.load``, ``data.batches``) over private files, one idea each.
"""

from latentjax.data._batching import batches, epoch_order, permutation  # noqa: F401
from latentjax.data._datasets import (  # noqa: F401
    DATA_DIR_ENV,
    FASHION_MNIST_CLASSES,
    NAMES,
    SPRITE_FACTORS,
    SPRITE_SHAPES,
    Dataset,
    image_folder,
    load,
    read_idx,
    render_sprites,
    sprites,
)
from latentjax.data._images import validate_images  # noqa: F401
