"""Data in: data sets by name (MNIST and Fashion-MNIST downloadable), sprites, image folders, one epoch order.

One namespace (``data.load``, ``data.batches``) over private files, one idea each: ``_datasets``
(``load`` by name), ``_download`` (fetching the official MNIST files into a cache, checked and
atomic), ``_idx`` (IDX and prepared tfds files), ``_sprites`` (generated shapes),
``_dsprites`` (the dSprites grid, drawn on demand), ``_folders`` (images with a table of
attributes), ``_images`` (the one image validator),
``_batching`` (the one epoch order), ``_binarize`` (Bernoulli draws of images: fixed and dynamic
binarisation).
"""

from latentjax.data._batching import batches, epoch_order, permutation  # noqa: F401
from latentjax.data._binarize import (  # noqa: F401
    BINARIZE,
    BINARIZED_TEST_SEED,
    binarize,
    binarize_batch,
    check_binarize,
)
from latentjax.data._datasets import DATA_DIR_ENV, FASHION_MNIST_CLASSES, NAMES, Dataset, load  # noqa: F401
from latentjax.data._download import CACHE_DIR_ENV, DATA_URL_ENV, DOWNLOADABLE, download  # noqa: F401
from latentjax.data._dsprites import DSPRITES_FACTORS, DSPRITES_SHAPES, DSprites, GroundTruthData  # noqa: F401
from latentjax.data._folders import image_folder  # noqa: F401
from latentjax.data._idx import read_idx  # noqa: F401
from latentjax.data._images import validate_images  # noqa: F401
from latentjax.data._sprites import SPRITE_FACTORS, SPRITE_SHAPES, render_sprites, sprites  # noqa: F401
