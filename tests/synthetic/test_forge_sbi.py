"""Generator v3's Self-Blended Images (the default detector's training forgery): the
published recipe's pieces, masks that are never empty, determinism, and the pair."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect.synthetic import forge, procedural
from dfdetect.errors import DataError


def face(seed: int, size: int = 128):
    rng = np.random.default_rng(seed)
    return procedural.render_face(procedural.random_identity(rng), procedural.random_view(rng),
                                  size)


def test_forehead_points_lie_above_the_brows():
    _, lm = face(0)
    pts = forge.extend_forehead(lm)
    assert pts.shape == (78, 2)
    np.testing.assert_array_equal(pts[:68], lm)
    # image y grows downwards: every forehead point is above its brow point
    assert (pts[68:, 1] < lm[17:27, 1] - 2).all()
    assert forge.hull_mask((128, 128), pts).sum() > forge.hull_mask((128, 128), lm).sum()


def test_sbi_mask_is_never_empty_and_peaks_at_one():
    # the calibration's pitfall: a blurred mask divided by max + eps and cut at 1 is empty
    img, lm = face(1)
    for seed in range(12):
        p = forge.sample_sbi_params(np.random.default_rng(seed))
        mask = forge.sbi_mask(img.shape, lm, p)
        assert mask.dtype == np.float32 and mask.shape == img.shape[:2]
        assert mask.max() == pytest.approx(1.0, abs=1e-5)
        assert (mask > 0.5).mean() > 0.05


def test_sbi_ratios_follow_the_recipe():
    ratios = [forge.sample_sbi_params(np.random.default_rng(s))["ratio"] for s in range(600)]
    assert set(ratios) == {0.25, 0.5, 0.75, 1.0}
    assert np.mean(np.asarray(ratios) == 1.0) == pytest.approx(0.5, abs=0.07)


def test_sbi_changes_the_face_only_through_its_mask_and_is_deterministic():
    img, lm = face(2)
    for seed in range(6):
        real, fake = forge.sbi(img, lm, np.random.default_rng(seed))
        again_real, again = forge.sbi(img, lm, np.random.default_rng(seed))
        np.testing.assert_array_equal(fake.image, again.image)
        np.testing.assert_array_equal(real, again_real)
        assert fake.method == "sbi" and real.shape == img.shape
        diff = np.abs(fake.image.astype(int) - real.astype(int)).sum(2)
        assert diff[fake.mask > 0.5 * fake.mask.max()].mean() > 1.0
        assert (diff[fake.mask == 0] <= 3).all()  # outside the blend: the real (rounding)
        assert fake.mask.max() == pytest.approx(fake.params["ratio"], abs=1e-5)
        if fake.params["aug_side"] == 0:  # the source was changed: the real is untouched
            np.testing.assert_array_equal(real, img)


def test_sbi_rejects_bad_landmarks():
    img, lm = face(3)
    with pytest.raises(DataError):
        forge.sbi(img, lm[:60], np.random.default_rng(0))
