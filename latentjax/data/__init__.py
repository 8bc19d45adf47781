"""Data in: offline data sets by name, generated sprites, image folders, one epoch order.

One namespace (``data.load``, ``data.batches``) over private files, one idea each: ``_datasets``
(``load`` by name), ``_idx`` (IDX and prepared tfds files), ``_sprites`` (generated shapes),
``_folders`` (images with a table of attributes), ``_images`` (the one image validator),
``_batching`` (the one epoch order).
"""

from latentjax.data._batching import batches, epoch_order, permutation  # noqa: F401
from latentjax.data._datasets import DATA_DIR_ENV, FASHION_MNIST_CLASSES, NAMES, Dataset, load  # noqa: F401
from latentjax.data._folders import image_folder  # noqa: F401
from latentjax.data._idx import read_idx  # noqa: F401
from latentjax.data._images import validate_images  # noqa: F401
from latentjax.data._sprites import SPRITE_FACTORS, SPRITE_SHAPES, render_sprites, sprites  # noqa: F401
