"""data"""

from latentjax.data._datasets import (  # noqa: F401
    DATA_DIR_ENV,
    Dataset,
    FASHION_MNIST_CLASSES,
    NAMES,
    SPRITE_FACTORS,
    SPRITE_SHAPES,
    batches,
    image_folder,
    load,
    permutation,
    read_idx,
    render_sprites,
    sprites,
    validate_images,
)
