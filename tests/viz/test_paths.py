"""viz.path_gif's frame titles: a waypoint's name exactly where move.path passes that point."""

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from latentjax import move, viz
from latentjax.errors import InputError


@pytest.mark.parametrize("num_frames", [7, 16])
def test_waypoint_titles_name_the_frames_move_path_puts_on_a_point(num_frames):
    points = jnp.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0], [0.0, 3.0]])
    names = ["square", "ellipse", "triangle", "heart"]
    frames = np.asarray(move.path(points, num_points=num_frames, method="lerp"))
    titles = viz.waypoint_titles(names, num_frames)
    for f, title in zip(frames, titles):
        on = [k for k, p in enumerate(np.asarray(points)) if np.allclose(f, p, atol=1e-6)]
        if on:
            assert title == names[on[0]]
        else:  # between points k and k + 1: the share of the way is the distance ratio
            a, b = title.split(" ")[0], title.split(" ")[2]
            k = names.index(a)
            assert names[k + 1] == b
            share = np.linalg.norm(f - points[k]) / np.linalg.norm(points[k + 1] - points[k])
            assert title.endswith(f"{share:.0%}")
    with pytest.raises(InputError, match="waypoint_titles"):
        viz.waypoint_titles(["a"], 5)


def test_path_gif_titles_change_with_the_frames(tmp_path):
    x = np.zeros((5, 8, 8, 1))
    path = viz.path_gif(x, tmp_path / "t.gif", waypoint_names=["a", "b"], boomerang=False)
    im = Image.open(path)
    first = np.asarray(im.convert("L"), int)
    im.seek(2)
    # Identical black frames: only the title ("a" vs "a -> b 50%") tells them apart.
    assert im.n_frames == 5 and np.abs(np.asarray(im.convert("L"), int) - first).max() > 0
