"""Populations: K models at once equal K separate runs; one compilation for any betas; exact resume.

References: ``train.fit`` with each member's key and beta.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from trainhelp import Killed, kill_after_save, leaves_equal, logged, max_diff, random_images

from latentjax.errors import CheckpointError, InputError, LatentJaxError, TrainingDiverged
from latentjax.learn import checkpoint, loop, models, population, runs, state, train

CFG = models.Config(latent_dim=4, hidden=32, activation="relu")


def _keys(seeds):
    return [jax.random.key(s) for s in seeds]


def test_population_equals_separate_runs():
    images = random_images(96)
    seeds, betas = population.grid(size=2, beta_grid=[1.0, 4.0])
    assert (seeds, betas) == ((0, 1, 0, 1), (1.0, 1.0, 4.0, 4.0))
    seeds, betas = seeds[:3], betas[:3]  # two seeds at one beta, two betas at one seed
    res = population.fit(_keys(seeds), CFG, images, betas=betas, epochs=2, batch_size=32)
    assert isinstance(res, loop.FitResult)
    assert res.state.step.tolist() == [6] * 3
    for k, (seed, beta) in enumerate(zip(seeds, betas)):
        ref = train.fit(
            jax.random.key(seed), CFG, images, epochs=2, batch_size=32, beta=beta, progress=False, mode="scan"
        )
        np.testing.assert_allclose(
            [h["losses"][k] for h in res.history], [h["loss"] for h in ref.history], rtol=1e-6
        )
        assert max_diff(state.take(res.state, k).params, ref.state.params) < 1e-6
        x = models.to_float(images[:4])
        np.testing.assert_allclose(
            jax.vmap(models.reconstruct, in_axes=(None, 0))(state.take(res.model, k), x),
            jax.vmap(models.reconstruct, in_axes=(None, 0))(ref.model, x),
            atol=1e-5,
        )


def test_population_loop_mode_and_one_compilation_for_any_betas():
    images = random_images(16)
    graphdef, pop, tx = population.init(_keys([5, 6]), CFG, betas=[0.5, 2.0])
    step = jax.jit(population.make_step(graphdef, tx))
    batch = jnp.stack([images[:8], images[8:]])
    st, m = step(pop, batch)
    st, m2 = step(st._replace(betas=jnp.array([1.0, 3.0])), batch)
    assert step._cache_size() == 1 and m2["loss"].shape == (2,)
    for k, (seed, beta) in enumerate([(5, 0.5), (6, 2.0)]):
        g, s, t = state.init(jax.random.key(seed), CFG, learning_rate=1e-3)
        _, ref = jax.jit(train.make_step(g, t, beta=beta))(s, images[8 * k : 8 * k + 8])
        np.testing.assert_allclose(m["loss"][k], ref["loss"], rtol=1e-6)
    res = population.fit(_keys([5]), CFG, images, betas=1.0, epochs=1, batch_size=8, mode="loop")
    ref = train.fit(jax.random.key(5), CFG, images, epochs=1, batch_size=8, progress=False, mode="loop")
    np.testing.assert_allclose(res.history[0]["losses"][0], ref.history[0]["loss"], rtol=1e-6)
    with pytest.raises(LatentJaxError, match="betas"):
        population.init(_keys([0, 1]), CFG, betas=[1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="keys is empty"):
        population.init([], CFG)
    with pytest.raises(InputError, match="size=0"):
        population.grid(size=0)
    with pytest.raises(InputError, match="mode must be one of"):
        population.fit(_keys([5]), CFG, images, epochs=1, batch_size=8, mode="host")


def test_population_resume_is_bitwise_exact(tmp_path, monkeypatch):
    images = random_images(96)
    seeds = [0, 1]
    kw = {
        "seeds": seeds,
        "betas": [1.0, 4.0],
        "epochs": 2,
        "batch_size": 32,
        "checkpoint_every": 2,
        "keep": 5,
    }
    ref = population.fit(_keys(seeds), CFG, images, out_dir=tmp_path / "ref", **kw)
    # killed between the two members' saves of step 4: member 0 holds steps 2 and 4, member 1 only 2
    kill_after_save(monkeypatch, 4)
    with pytest.raises(Killed):
        population.fit(_keys(seeds), CFG, images, out_dir=tmp_path / "run", **kw)
    monkeypatch.undo()
    names = [population.member_name(k, s, b) for k, (s, b) in enumerate(zip(kw["seeds"], kw["betas"]))]
    assert [checkpoint.Manager(tmp_path / "run" / m).all_steps() for m in names] == [[2, 4], [2]]
    with pytest.raises(CheckpointError, match="another population"):
        population.fit(
            _keys([0, 2]), CFG, images, out_dir=tmp_path / "run", resume=True, **{**kw, "seeds": [0, 2]}
        )
    with pytest.raises(InputError, match="not empty; pass resume=True"):
        population.fit(_keys(seeds), CFG, images, out_dir=tmp_path / "run", **kw)
    res = population.fit(_keys(seeds), CFG, images, out_dir=tmp_path / "run", resume=True, **kw)
    assert [h["step"] for h in res.history] == [3, 4, 6]  # from the common step 2
    assert leaves_equal(res.state, ref.state)
    for k, m in enumerate(names):
        assert logged(tmp_path / "run" / m) == logged(tmp_path / "ref" / m)
        model, _ = runs.load_model(tmp_path / "run" / m)
        assert leaves_equal(nnx.state(model), state.take(res.state, k).params)


def test_population_nan_names_the_member_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    images = np.minimum(random_images(96), 254)
    images[50] = 255  # member 1 (beta 4) diverges on the batch holding this image
    orig = train.loss_fn

    def poisoned(params, k, batch, *, graphdef, beta=1.0, **objective):
        return jnp.where(
            (jnp.max(batch) == 255) & (beta > 2),
            jnp.nan,
            orig(params, k, batch, graphdef=graphdef, beta=beta, **objective),
        )

    monkeypatch.setattr(train, "loss_fn", poisoned)
    with pytest.raises(TrainingDiverged, match=r"population members \[1\].*last good checkpoint") as err:
        population.fit(
            _keys([0, 0]),
            CFG,
            images,
            seeds=[0, 0],
            betas=[1.0, 4.0],
            epochs=2,
            batch_size=32,
            checkpoint_every=1,
            out_dir=tmp_path / "pop",
        )
    bad = int(str(err.value).split("at step ")[1].split()[0])
    for m in ("member00_seed0_beta1", "member01_seed0_beta4"):
        assert checkpoint.Manager(tmp_path / "pop" / m).latest_step() == bad


def test_members_without_seeds_are_named_by_index(tmp_path):
    population.fit(
        _keys([3, 4]),
        CFG,
        random_images(32),
        betas=[1.0, 2.0],
        epochs=1,
        batch_size=16,
        out_dir=tmp_path / "p",
    )
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "member00_beta1",
        "member01_beta2",
        "population.json",
    ]
    assert "seed" not in runs.read_config(tmp_path / "p" / "member00_beta1").train


def test_a_population_without_checkpoints_restarts_with_new_settings(tmp_path):
    # A run that stopped before its first checkpoint leaves population.json and member folders
    # without checkpoints; a new command (other betas) may start over in the same folder.
    out = tmp_path / "pop"
    (out / "member00_beta1").mkdir(parents=True)
    (out / "population.json").write_text('{"seeds": null, "betas": [1.0]}')
    x = np.zeros((16, 4, 4, 1), np.uint8)
    cfg = models.Config(kind="vae", arch="mlp", image_shape=(4, 4, 1), latent_dim=2, hidden=8)
    res = population.fit(
        jax.random.split(jax.random.key(0), 2), cfg, x, betas=[1.0, 2.0], epochs=1, batch_size=8,
        out_dir=out, checkpoint_every=1, progress=False,
    )  # fmt: skip
    assert np.isfinite(np.asarray(res.history[-1]["losses"])).all()
    assert json.loads((out / "population.json").read_text())["betas"] == [1.0, 2.0]
    # with checkpoints now saved, a plain restart is refused and nothing is touched
    with pytest.raises(InputError, match="not empty"):
        population.fit(
            jax.random.split(jax.random.key(0), 2), cfg, x, betas=[1.0, 2.0], epochs=1, batch_size=8,
            out_dir=out, checkpoint_every=1, progress=False,
        )  # fmt: skip
