"""Forgery methods: visible change confined near the face, masks, determinism, flicker,
the shared finishing step, and errors on bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfdetect.synthetic import forge, procedural
from dfdetect.errors import DataError


def face(seed: int, size: int = 128):
    rng = np.random.default_rng(seed)
    return procedural.render_face(procedural.random_identity(rng), procedural.random_view(rng),
                                  size)


def near_face(shape, lm, grow: float = 0.25) -> np.ndarray:
    """The landmarks' hull with the forehead (SBI's), grown by ``grow`` of the face size:
    where a change may happen."""
    hull = forge.hull_mask(shape, forge.extend_forehead(lm)) > 0
    k = int(2 * forge.face_size(lm) * grow) | 1
    return cv2.dilate(hull.astype(np.uint8), np.ones((k, k), np.uint8)) > 0


@pytest.mark.parametrize("version", forge.GENERATOR_VERSIONS)
@pytest.mark.parametrize("method", forge.METHODS)
def test_every_method_changes_the_face_and_only_near_it(method, version):
    img, lm = face(0)
    donor = face(1)
    for seed in range(4):
        out = forge.forge(method, img, lm, np.random.default_rng(seed), donor=donor,
                          version=version)
        assert out.method == method
        assert out.image.shape == img.shape and out.image.dtype == np.uint8
        assert out.mask.shape == img.shape[:2] and out.mask.dtype == np.float32
        assert 0 <= out.mask.min() and out.mask.max() <= 1 and out.mask.max() > 0.2
        # a self-blend may change the target too (SBI): compare with the real it pairs with
        real = img if out.real is None else out.real
        assert real.shape == img.shape and real.dtype == np.uint8
        diff = np.abs(out.image.astype(int) - real.astype(int)).sum(2)
        near = near_face(img.shape, lm)
        assert diff[out.mask >= 0.5 * out.mask.max()].mean() > 2.0  # visible in the mask
        assert (diff[~near] == 0).all()  # untouched away from the face
        assert (diff[out.mask == 0] == 0).all()  # the mask says where it changed


@pytest.mark.parametrize("version", forge.GENERATOR_VERSIONS)
@pytest.mark.parametrize("method", forge.METHODS)
def test_fakes_keep_the_face_colour_plausible(method, version):
    # no purple / yellow faces: the forged region's mean colour stays close to the real one
    for seed in range(4):
        img, lm = face(10 + seed)
        donor = face(20 + seed)
        out = forge.forge(method, img, lm, np.random.default_rng(seed), donor=donor,
                          version=version)
        sel = out.mask >= 0.5 * out.mask.max()
        real = img if out.real is None else out.real
        shift = out.image[sel].astype(float).mean(0) - real[sel].astype(float).mean(0)
        # SBI's published ranges: RGB shift +-20 per channel, brightness +-0.1 (25 levels)
        limit = 45 if (method, version) == ("self_blend", 3) else 20
        assert np.abs(shift).max() < limit, shift
        assert shift.max() - shift.min() < 42, shift  # a tint, never a purple face


@pytest.mark.parametrize("version", forge.GENERATOR_VERSIONS)
def test_same_rng_same_bytes_and_params_replay(version):
    img, lm = face(2)
    a = forge.self_blend(img, lm, np.random.default_rng(7), version=version)
    b = forge.self_blend(img, lm, np.random.default_rng(7), version=version)
    c = forge.self_blend(img, lm, np.random.default_rng(8), version=version)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image, c.image)
    # the parameters say which recipe made them: a replay needs no version
    replay = forge.self_blend(img, lm, params=a.params)
    assert np.array_equal(replay.image, a.image)


def test_versions_differ_and_an_unknown_version_is_refused():
    img, lm = face(2)
    v2 = forge.self_blend(img, lm, np.random.default_rng(7), version=2)
    v3 = forge.self_blend(img, lm, np.random.default_rng(7), version=3)
    assert "elastic_seed" in v3.params and "elastic_seed" not in v2.params
    assert v2.real is None and v3.real is not None  # only SBI may augment the target
    assert forge.DEFAULT_GENERATOR in forge.GENERATOR_VERSIONS
    with pytest.raises(DataError, match="generator version 7"):
        forge.forge("self_blend", img, lm, np.random.default_rng(0), version=7)


def test_identity_swap_brings_in_the_donor_face():
    img, lm = face(3)
    dimg, dlm = face(4)
    out = forge.identity_swap(img, lm, dimg, dlm, np.random.default_rng(0))
    sel = out.mask >= 0.9 * out.mask.max()
    # the inner face's structure (edges: eyes, brows, mouth) now follows the donor's
    # aligned face more than the target's; colours were transferred, so compare edges
    m, _ = cv2.estimateAffine2D(dlm[17:].astype(np.float32), lm[17:].astype(np.float32))
    aligned = cv2.warpAffine(dimg, m, img.shape[1::-1])

    def edges(rgb):
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), 1.0), cv2.CV_32F)[sel]

    corr = lambda a, b: np.corrcoef(edges(a), edges(b))[0, 1]  # noqa: E731
    assert corr(out.image, aligned) > corr(out.image, img) + 0.1


def test_temporal_params_flicker_and_amount_zero_is_stable_v2():
    rng = np.random.default_rng(0)
    frames = forge.temporal_params("self_blend", 5, rng, amount=1.0, version=2)
    assert len(frames) == 5
    assert len({round(p["shift_r"], 6) for p in frames}) == 5
    assert len({p["mask_seed"] for p in frames}) == 1  # the same mask shape, wobbling
    img, lm = face(5)
    masks = [forge.self_blend(img, lm, params=p).mask for p in frames]
    assert max(np.abs(masks[i + 1] - masks[i]).max() for i in range(4)) > 0.05


def test_temporal_params_flicker_and_amount_zero_is_stable():
    rng = np.random.default_rng(0)
    frames = forge.temporal_params("self_blend", 5, rng, amount=1.0, version=3)
    assert len(frames) == 5
    assert len({round(p["tx"], 6) for p in frames}) == 5
    assert len({round(p["rgb"][0], 6) for p in frames}) == 5
    assert len({p["elastic_seed"] for p in frames}) == 1  # the same mask shape, wobbling
    # SBI's units: brightness / contrast are fractions, never pushed to v2's pixel units
    assert all(abs(p["brightness"]) <= 0.15 and abs(p["contrast"]) <= 0.15 for p in frames)
    assert all(p["ratio"] == frames[0]["ratio"] and p["aug_side"] == frames[0]["aug_side"]
               for p in frames)
    stable = forge.temporal_params("identity_swap", 3, rng, amount=0.0)
    assert all(p["blur"] == stable[0]["blur"] for p in stable)
    img, lm = face(5)
    masks = [forge.self_blend(img, lm, params=p).mask for p in frames]
    assert max(np.abs(masks[i + 1] - masks[i]).max() for i in range(4)) > 0.05


def test_finish_resizes_compresses_and_is_deterministic():
    img, _ = face(6)
    params = forge.sample_finish_params(np.random.default_rng(0), version=2)
    assert 70 <= params["quality"] <= 95
    out = forge.finish(img, 64, params)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert np.array_equal(out, forge.finish(img, 64, params))
    lossless = forge.finish(img, 64, dict(params, quality=100, noise=0))
    assert not np.array_equal(out, lossless)
    qualities = [forge.sample_finish_params(np.random.default_rng(s), version=3)["quality"]
                 for s in range(200)]
    assert min(qualities) >= 40 and max(qualities) <= 100  # SBI's train-time range
    assert min(qualities) < 50 and max(qualities) > 90


def test_bad_inputs_raise_data_error():
    img, lm = face(7)
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="68, 2"):
        forge.self_blend(img, lm[:60], rng)
    with pytest.raises(DataError, match="uint8"):
        forge.self_blend(img.astype(np.float32), lm, rng)
    with pytest.raises(DataError, match="NaN"):
        forge.self_blend(img, np.full((68, 2), np.nan), rng)
    with pytest.raises(DataError, match="donor"):
        forge.forge("identity_swap", img, lm, rng)
    with pytest.raises(DataError, match="unknown forgery method"):
        forge.forge("deepfake", img, lm, rng)
