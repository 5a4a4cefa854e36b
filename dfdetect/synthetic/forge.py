"""Forgeries made from real faces: self-blend, identity swap, and temporal flicker.

Every forgery is a pure function of (image(s), 68 landmarks, rng): the same inputs and
the same generator state give the same bytes. Each returns a :class:`Forgery` holding
the forged image, the soft mask of where it changed the image (``[0, 1]``, kept for
Grad-CAM checks) and the parameters it drew, so a video can re-use them with small
frame-to-frame changes (:func:`temporal_params`).

Methods (names as written in a store's ``method`` column):

* ``self_blend`` -- the Self-Blended Images idea (Shiohara & Yamasaki, CVPR 2022): a copy
  of the same face, changed in colour or sharpness, slightly shifted and scaled, is
  blended back through a soft landmark-hull mask. The person stays the same; only
  blending artefacts (a boundary, a mismatch of sharpness, noise and colour) betray the
  fake. Generator version 2 (:func:`soft_blend`, the default) mostly degrades the face's
  texture; version 3 is the published recipe in full (:func:`sbi`: either side
  augmented, an elastically deformed, twice-blurred hull with the forehead, a ratio from
  {.25, .5, .75, 1, 1, 1}).
* ``identity_swap`` -- FaceSwap-like: the inner face of another identity is aligned on
  the landmarks (affine fit), colour-transferred in Lab space, and feathered into the
  target through a convex-hull mask.
* temporal flicker -- for videos, :func:`temporal_params` draws one parameter set per
  video and jitters it independently on every frame, so the blend flickers in time the
  way early face swaps do.

:func:`finish` is the shared last step of every benchmark sample, real or fake: resize,
JPEG at a quality drawn from one range, sensor noise. Because reals and fakes share it,
no global cue (size, compression, noise level) gives the label away.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from dfdetect.errors import DataError

#: Forgery methods for still images (a video fake uses one of them with flicker).
METHODS = ("self_blend", "identity_swap")

#: Versions of the forgery distributions. Add one whenever a change moves what a
#: benchmark built with the same seed contains: stores record it, and a store made by
#: another version is rebuilt instead of reused (:func:`dfdetect.experiment.benchmark_store`).
#: 2: the self-blend's face texture was mostly degraded (down-up-sampled or blurred), a
#: softer inner face: real face swaps at c23 compression do not show that cue (P1's
#: Meso-4 / Xception trained on it scored real deepfakes at video AUC 0.44 / 0.56).
#: 3: ``self_blend`` is the Self-Blended Images recipe in full (:func:`sbi`: forehead hull,
#: elastic mask, two random blurs, ratio from {.25,.5,.75,1,1,1}, source-target
#: augmentation on either side), and the JPEG quality every sample is finished with is
#: drawn from 40-100 (SBI's train-time range) instead of 70-95, on reals and fakes alike.
#: The versions a benchmark can be built with (``--generator``); every one stays
#: reproducible, so the committed tables made with one can be rebuilt byte for byte.
GENERATOR_VERSIONS = (2, 3)

#: What the experiments and ``dfdetect data build`` use unless ``--generator`` says
#: otherwise: version 2, the one every committed table was made with. Version 3 is the
#: realistic recipe, but at cpu scale (64 px, 2,100 static crops, the papers' epoch
#: budgets) its subtle blends were not learned (P1 Xception test AUC 0.51, Meso-4 0.74
#: after 200 epochs; docs/benchmark.md), so switching the default would
#: turn every cpu-scale comparison into noise.
DEFAULT_GENERATOR = 2

#: JPEG quality range of every finished sample, real or fake, per version: 3 takes SBI's
#: train-time range (real footage arrives anywhere from heavily compressed to lossless).
FINISH_QUALITY = {2: (70, 95), 3: (40, 100)}


def params_version(params: dict) -> int:
    """The generator version a self-blend's parameter set was drawn for (SBI's carry an
    elastic-deformation seed, version 2's do not)."""
    return 3 if "elastic_seed" in params else 2


def check_version(version: int) -> int:
    """``version`` as an int, or a :class:`DataError` naming the versions there are."""
    if int(version) not in GENERATOR_VERSIONS:
        raise DataError(f"unknown forgery generator version {version}: expected one of "
                        f"{', '.join(map(str, GENERATOR_VERSIONS))}")
    return int(version)


#: Version 2's self-blend texture change probabilities (none, down-up-sample, blur,
#: sharpen): mostly degradation. Measured on the cpu real-face benchmark (Meso-4, flip-only
#: augmentation, to early stopping): with version 1's (0, .5, .25, .25) Meso-4 reached
#: ROC AUC 0.81-0.82 and learned "a blurry photo is fake"; these gave 0.90.
SELF_BLEND_TEXTURE_P = (0.0, 0.6, 0.3, 0.1)

#: Probabilities of the swap's texture change (none, down-up-sample, blur, sharpen).
#: Mostly degradation, the artefact of a face rendered at a lower resolution than its
#: frame (the autoencoder swaps of FaceForensics++ and Celeb-DF). Measured on the cpu
#: real-face benchmark (Meso-4, version 1): when half of the swaps had no degraded
#: texture, Meso-4 learned "a blurry photo is fake" instead of the blend.
SWAP_TEXTURE_P = (0.05, 0.6, 0.25, 0.1)

# landmark groups (dlib 68-point order)
_OUTER = list(range(0, 27))  # jaw + brows
_INNER = list(range(17, 68))  # brows, nose, eyes, mouth
_ALIGN = list(range(17, 68))


@dataclasses.dataclass(frozen=True)
class Forgery:
    """A forged image.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB, same size as the target.
        mask: ``(H, W)`` float32 in ``[0, 1]``: how much of each pixel comes from the
            manipulated face (0 = untouched).
        method: ``self_blend`` or ``identity_swap``.
        params: the parameters drawn (plain floats / ints).
        real: the real image the forgery was made into when it is not the input image
            (SBI's target-side augmentation changes it); ``None`` means the input.
    """

    image: np.ndarray
    mask: np.ndarray
    method: str
    params: dict
    real: np.ndarray | None = None


# ----------------------------------------------------------------------------- checks

def check_landmarks(landmarks: np.ndarray, shape, what: str = "landmarks") -> np.ndarray:
    """Validate a ``(68, 2)`` landmark array against an image shape.

    Raises:
        DataError: wrong shape, non-finite values, or a face of (nearly) no size.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise DataError(f"{what} must be a (68, 2) array of (x, y), got {lm.shape}")
    if not np.isfinite(lm).all():
        raise DataError(f"{what} contain NaN or infinite values")
    if face_size(lm) < 4:
        raise DataError(f"{what} describe a face smaller than 4 pixels")
    return lm


def _check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"{what} must be an (H, W, 3) uint8 RGB array, got "
                        f"{image.shape} {image.dtype}")
    return image


def _inputs(image, landmarks, rng, params, sampler, name: str):
    """A forgery's checked ``(image, landmarks, params)``; params drawn when not given."""
    image = _check_image(image)
    lm = check_landmarks(landmarks, image.shape)
    if params is None:
        if rng is None:
            raise ValueError(f"{name} needs rng or params")
        params = sampler(rng)
    return image, lm, params


def face_size(landmarks: np.ndarray) -> float:
    """A face's size in pixels: the larger side of the landmarks' bounding box."""
    lm = np.asarray(landmarks)
    span = lm.max(0) - lm.min(0)
    return float(max(span[0], span[1]))


def face_centre(landmarks: np.ndarray) -> np.ndarray:
    """Centre of the landmarks' bounding box."""
    lm = np.asarray(landmarks)
    return (lm.max(0) + lm.min(0)) / 2.0


# ----------------------------------------------------------------------------- masks

def hull_mask(shape, points: np.ndarray) -> np.ndarray:
    """Filled convex hull of ``points`` as a float32 mask of ``shape[:2]``."""
    mask = np.zeros(shape[:2], np.float32)
    hull = cv2.convexHull(np.round(np.asarray(points) * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0, cv2.LINE_AA, 4)
    return mask


def blend_mask(shape, landmarks: np.ndarray, params: dict) -> np.ndarray:
    """The SBI-style soft mask: hull -> shrink -> elastic deformation -> blur.

    Args:
        shape: image shape.
        landmarks: ``(68, 2)``.
        params: ``region`` (0 whole face incl. brows, 1 inner face), ``shrink``
            (0.7-1.0, scales the hull towards its centre), ``deform`` (amplitude of the
            smooth random deformation, fraction of face size), ``mask_seed``, ``blur``
            (Gaussian sigma as a fraction of face size), ``erode`` (fraction).

    Returns:
        float32 mask in ``[0, 1]`` with maximum 1 (unless the face is off-image).
    """
    lm = np.asarray(landmarks, np.float64)
    pts = lm[_OUTER] if params.get("region", 0) == 0 else lm[_INNER]
    if params.get("region", 0) == 0:
        # lift the brows a little so the forehead just above them is inside, like SBI
        pts = pts.copy()
        up = (lm[8] - lm[27:31].mean(0))
        pts[17:] -= up * 0.08
    c = pts.mean(0)
    pts = c + (pts - c) * params.get("shrink", 1.0)
    size = face_size(lm)
    mask = hull_mask(shape, pts)
    amp = params.get("deform", 0.0) * size
    if amp > 0.2:
        rng = np.random.default_rng(int(params.get("mask_seed", 0)))
        h, w = shape[:2]
        grid = max(2, int(round(4)))
        fields = []
        for _ in range(2):
            coarse = rng.uniform(-1, 1, (grid, grid)).astype(np.float32)
            fields.append(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) * amp)
        xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        mask = cv2.remap(mask, xx + fields[0], yy + fields[1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    erode = params.get("erode", 0.0) * size
    if erode >= 1:
        k = int(round(erode)) | 1
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    sigma = params.get("blur", 0.05) * size
    if sigma > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
        # SBI re-normalises so the blurred mask still reaches 1 in the middle
        peak = float(mask.max())
        if peak > 1e-6:
            mask = np.clip(mask / peak, 0, 1)
    return mask.astype(np.float32)


# ----------------------------------------------------------------------------- transforms

def _colour_transform(img: np.ndarray, p: dict) -> np.ndarray:
    """Per-channel shift, brightness / contrast, saturation; ``img`` float32 0-255."""
    out = img + np.array([p["shift_r"], p["shift_g"], p["shift_b"]], np.float32)
    mean = out.mean(axis=(0, 1), keepdims=True)
    out = (out - mean) * p["contrast"] + mean + p["brightness"]
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * p["saturation"]
    return out


def _frequency_transform(img: np.ndarray, p: dict, face_px: float) -> np.ndarray:
    """Down-up-sampling, blur or sharpening: changes local texture, not colour."""
    kind = int(p["freq"])
    if kind == 1:  # down-up-sample
        h, w = img.shape[:2]
        f = float(p["down"])
        small = cv2.resize(img, (max(2, int(round(w * f))), max(2, int(round(h * f)))),
                           interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if kind == 2:  # blur
        return cv2.GaussianBlur(img, (0, 0), max(0.3, p["sigma"]))
    if kind == 3:  # sharpen (unsharp mask)
        blur = cv2.GaussianBlur(img, (0, 0), 1.0)
        return img + p["amount"] * (img - blur)
    return img


def _jpeg(img: np.ndarray, quality: float) -> np.ndarray:
    """JPEG round trip of a float image: the generated face was encoded on its own."""
    u8 = np.clip(np.round(img), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(round(quality))])
    if not ok:
        raise DataError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32)


def _similarity(centre: np.ndarray, scale: float, shift: np.ndarray, angle: float = 0.0):
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    m[:, 2] += shift
    return m


def sample_self_blend_params(rng: np.random.Generator) -> dict:
    """Draw the parameters of one self-blend (SBI's ranges, kept subtle).

    The colour changes are zero-mean (random sign), so on average fakes are not
    brighter or redder than reals; the texture is mostly degraded inside the mask
    (:data:`SELF_BLEND_TEXTURE_P`), a local inconsistency with the rest of the photo.
    """
    freq = int(rng.choice(4, p=list(SELF_BLEND_TEXTURE_P)))
    return {
        "shift_r": float(rng.uniform(-8, 8)),
        "shift_g": float(rng.uniform(-8, 8)),
        "shift_b": float(rng.uniform(-8, 8)),
        "brightness": float(rng.uniform(-8, 8)),
        "contrast": float(rng.uniform(0.9, 1.1)),
        "saturation": float(rng.uniform(0.88, 1.12)),
        "freq": freq,
        "down": float(rng.uniform(0.4, 0.75)),
        "sigma": float(rng.uniform(0.6, 1.4)),
        "amount": float(rng.uniform(0.4, 1.0)),
        "tx": float(rng.uniform(-0.02, 0.02)),
        "ty": float(rng.uniform(-0.02, 0.02)),
        "scale": float(rng.uniform(0.97, 1.03)),
        "region": int(rng.integers(2)),
        "shrink": float(rng.uniform(0.85, 1.0)),
        "deform": float(rng.uniform(0.0, 0.04)),
        "mask_seed": int(rng.integers(2**31 - 1)),
        "erode": float(rng.uniform(0.0, 0.05)),
        "blur": float(rng.uniform(0.02, 0.07)),
        "ratio": float(rng.choice([0.75, 1.0, 1.0, 1.0])),
        "noise": float(rng.uniform(0.5, 4.0)),
        "noise_seed": int(rng.integers(2**31 - 1)),
    }


def soft_blend(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator | None = None,
               params: dict | None = None) -> Forgery:
    """Version 2's self-blend: a transformed copy of the face (texture mostly degraded)
    blended back through a blurred, shrunk, deformed landmark hull.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` ``(x, y)`` pixel landmarks of the face in ``image``.
        rng: draws the parameters (ignored when ``params`` is given).
        params: explicit parameters (see :func:`sample_self_blend_params`), e.g. the
            per-frame parameters of :func:`temporal_params`.

    Returns:
        A :class:`Forgery` with method ``self_blend``.

    Raises:
        DataError: bad image or landmarks.
    """
    image, lm, p = _inputs(image, landmarks, rng, params, sample_self_blend_params, "soft_blend")
    size = face_size(lm)
    src = image.astype(np.float32)
    src = _colour_transform(src, p)
    src = _frequency_transform(src, p, size)
    if p.get("noise", 0) > 0:
        nrng = np.random.default_rng(int(p.get("noise_seed", 0)))
        src = src + nrng.normal(0, p["noise"], src.shape).astype(np.float32)
    if p.get("jpeg", 100) < 100:
        src = _jpeg(src, p["jpeg"])
    m = _similarity(face_centre(lm), p["scale"], np.array([p["tx"], p["ty"]]) * size)
    h, w = image.shape[:2]
    src = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = blend_mask(image.shape, lm, p)
    alpha = (mask * p["ratio"])[..., None]
    out = src * alpha + image.astype(np.float32) * (1 - alpha)
    return Forgery(np.clip(np.round(out), 0, 255).astype(np.uint8), mask * p["ratio"],
                   "self_blend", dict(p))


def self_blend(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator | None = None,
               params: dict | None = None, version: int = DEFAULT_GENERATOR) -> Forgery:
    """Blend a transformed copy of the face back into itself.

    Version 2 is :func:`soft_blend`. Version 3 is :func:`sbi` (Shiohara & Yamasaki, CVPR 2022, as
    published): source-target augmentation on either side, the forehead-extended hull,
    elastic mask deformation, two random-kernel blurs, blend ratio from
    :data:`SBI_BLEND_RATIOS`. When the target side was augmented, the real image the
    blend went into is not ``image`` itself: it comes back as :attr:`Forgery.real`, and a
    benchmark pairs the fake with it so real and fake differ only by the blend.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` ``(x, y)`` pixel landmarks of the face in ``image``.
        rng: draws the parameters (ignored when ``params`` is given).
        params: explicit parameters (:func:`sample_sbi_params` or, version 2,
            :func:`sample_self_blend_params`), e.g. the per-frame parameters of
            :func:`temporal_params`; their keys say which recipe they belong to.
        version: generator version used when the parameters are drawn here.

    Returns:
        A :class:`Forgery` with method ``self_blend``.

    Raises:
        DataError: bad image or landmarks.
    """
    if params is not None:
        version = params_version(params)
    if check_version(version) == 2:
        out = soft_blend(image, landmarks, rng, params)
        return dataclasses.replace(out, method="self_blend")
    real, fake = sbi(image, landmarks, rng, params)
    return dataclasses.replace(fake, method="self_blend", real=real)


# ----------------------------------------------------------------------------- swap

def sample_swap_params(rng: np.random.Generator) -> dict:
    """Draw the parameters of one identity swap."""
    freq = int(rng.choice(4, p=list(SWAP_TEXTURE_P)))
    return {
        "colour_transfer": float(rng.uniform(0.9, 1.0)),
        "freq": freq,
        "down": float(rng.uniform(0.4, 0.75)),
        "sigma": float(rng.uniform(0.5, 1.2)),
        "amount": float(rng.uniform(0.3, 0.8)),
        "tx": float(rng.uniform(-0.01, 0.01)),
        "ty": float(rng.uniform(-0.01, 0.01)),
        "scale": float(rng.uniform(0.98, 1.02)),
        "region": int(rng.choice(2, p=[0.4, 0.6])),
        "shrink": float(rng.uniform(0.85, 1.0)),
        "deform": float(rng.uniform(0.0, 0.03)),
        "mask_seed": int(rng.integers(2**31 - 1)),
        "erode": float(rng.uniform(0.02, 0.06)),
        "blur": float(rng.uniform(0.03, 0.07)),
        "ratio": float(rng.choice([0.85, 1.0, 1.0])),
        "noise": float(rng.uniform(0.0, 2.0)),
        "noise_seed": int(rng.integers(2**31 - 1)),
    }


def _lab_transfer(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, strength: float):
    """Reinhard colour transfer of ``src`` towards ``dst`` statistics inside ``mask``."""
    sel = mask > 0.5
    if sel.sum() < 16:
        return src
    s_lab = cv2.cvtColor(np.clip(src, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    d_lab = cv2.cvtColor(dst.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    out = s_lab.copy()
    for c in range(3):
        sm, ss = s_lab[..., c][sel].mean(), s_lab[..., c][sel].std() + 1e-3
        dm, ds = d_lab[..., c][sel].mean(), d_lab[..., c][sel].std() + 1e-3
        gain = 1 + strength * (np.clip(ds / ss, 0.5, 2.0) - 1)
        out[..., c] = (s_lab[..., c] - sm) * gain + sm + strength * (dm - sm)
    return cv2.cvtColor(out, cv2.COLOR_Lab2RGB) * 255.0


def identity_swap(target: np.ndarray, target_landmarks: np.ndarray, source: np.ndarray,
                  source_landmarks: np.ndarray, rng: np.random.Generator | None = None,
                  params: dict | None = None) -> Forgery:
    """Put the inner face of ``source`` onto ``target`` (FaceSwap-like).

    The source face is warped onto the target by an affine fit of the inner landmarks
    (brows, eyes, nose, mouth), colour-transferred in Lab space inside the mask, and
    feathered into the target.

    Args:
        target: ``(H, W, 3)`` uint8 RGB: the face that keeps its head, hair, background.
        target_landmarks: its ``(68, 2)`` landmarks.
        source: the donor face image (any size).
        source_landmarks: the donor's landmarks.
        rng: draws the parameters (ignored when ``params`` is given).
        params: explicit parameters (see :func:`sample_swap_params`).

    Returns:
        A :class:`Forgery` with method ``identity_swap``.

    Raises:
        DataError: bad images or landmarks, or landmarks with no affine fit.
    """
    target = _check_image(target, "target image")
    source = _check_image(source, "source image")
    t_lm = check_landmarks(target_landmarks, target.shape, "target landmarks")
    s_lm = check_landmarks(source_landmarks, source.shape, "source landmarks")
    if params is None:
        if rng is None:
            raise ValueError("identity_swap needs rng or params")
        params = sample_swap_params(rng)
    p = params
    size = face_size(t_lm)
    dst_pts = t_lm[_ALIGN].astype(np.float32)
    dst_pts = (face_centre(t_lm) + (dst_pts - face_centre(t_lm)) * p["scale"]
               + np.array([p["tx"], p["ty"]]) * size).astype(np.float32)
    m, _ = cv2.estimateAffine2D(s_lm[_ALIGN].astype(np.float32), dst_pts, method=cv2.LMEDS)
    if m is None or not np.isfinite(m).all():
        raise DataError("identity swap: no affine fit between source and target landmarks")
    h, w = target.shape[:2]
    src = source.astype(np.float32)
    src = _frequency_transform(src, p, face_size(s_lm))
    warped = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    valid = cv2.warpAffine(np.ones(source.shape[:2], np.float32), m, (w, h),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = blend_mask(target.shape, t_lm, p)
    mask = mask * cv2.erode(valid, np.ones((3, 3), np.uint8))
    warped = _lab_transfer(warped, target, mask, p["colour_transfer"])
    if p.get("noise", 0) > 0:
        nrng = np.random.default_rng(int(p.get("noise_seed", 0)))
        warped = warped + nrng.normal(0, p["noise"], warped.shape).astype(np.float32)
    if p.get("jpeg", 100) < 100:
        warped = _jpeg(warped, p["jpeg"])
    alpha = (mask * p["ratio"])[..., None]
    out = warped * alpha + target.astype(np.float32) * (1 - alpha)
    return Forgery(np.clip(np.round(out), 0, 255).astype(np.uint8), mask * p["ratio"],
                   "identity_swap", dict(p))


# ----------------------------------------------------------------------------- dispatch

def sample_params(method: str, rng: np.random.Generator,
                  version: int = DEFAULT_GENERATOR) -> dict:
    """Parameters of ``method`` drawn from ``rng`` (the self-blend's differ by version)."""
    if method == "self_blend":
        return sample_sbi_params(rng) if check_version(version) == 3 else \
            sample_self_blend_params(rng)
    if method == "identity_swap":
        return sample_swap_params(rng)
    raise DataError(f"unknown forgery method {method!r}: expected one of {', '.join(METHODS)}")


def forge(method: str, image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
          donor: tuple[np.ndarray, np.ndarray] | None = None, params: dict | None = None,
          version: int = DEFAULT_GENERATOR) -> Forgery:
    """Apply ``method`` to one face.

    Args:
        method: one of :data:`METHODS`.
        image: the target face image.
        landmarks: its landmarks.
        rng: randomness for the parameters (when ``params`` is None).
        donor: ``(image, landmarks)`` of another identity (``identity_swap`` only).
        params: explicit parameters.
        version: generator version (:data:`GENERATOR_VERSIONS`): which self-blend recipe.
    """
    if method == "self_blend":
        return self_blend(image, landmarks, rng, params, version=version)
    if method == "identity_swap":
        if donor is None:
            raise DataError("identity_swap needs a donor face of another identity")
        return identity_swap(image, landmarks, donor[0], donor[1], rng, params)
    raise DataError(f"unknown forgery method {method!r}: expected one of {', '.join(METHODS)}")


# Which parameters flicker from frame to frame, and by how much (in their own units),
# and the range each stays in. Version 2's recipes (swap, soft blend) and SBI have their
# own tables: the same name (brightness, contrast) means different units in each.
_JITTER_V2 = {
    "shift_r": 2.5, "shift_g": 2.5, "shift_b": 2.5, "brightness": 3.0, "contrast": 0.03,
    "saturation": 0.03, "down": 0.06, "sigma": 0.15, "amount": 0.12, "tx": 0.006,
    "ty": 0.006, "scale": 0.008, "shrink": 0.025, "deform": 0.006, "erode": 0.008,
    "blur": 0.008, "colour_transfer": 0.08, "noise": 0.5,
}
_RANGE_V2 = {"contrast": (0.7, 1.3), "saturation": (0.7, 1.3), "down": (0.2, 0.95),
             "sigma": (0.3, 3.0), "amount": (0.0, 2.0), "shrink": (0.6, 1.05),
             "deform": (0.0, 0.1), "erode": (0.0, 0.15), "blur": (0.005, 0.15),
             "colour_transfer": (0.0, 1.0), "noise": (0.0, 8.0), "scale": (0.9, 1.1)}
_JITTER_SBI = {
    "hue": 0.5, "sat": 1.5, "val": 1.5, "brightness": 0.01, "contrast": 0.01,
    "down": 0.03, "sharpen": 0.05, "tx": 0.005, "ty": 0.004, "scale": 0.008,
    "elastic_alpha": 4.0, "mask_down": 0.05, "sigma2": 3.0,
}
_RANGE_SBI = {"brightness": (-0.15, 0.15), "contrast": (-0.15, 0.15), "down": (0.2, 0.6),
              "sharpen": (0.0, 0.7), "scale": (0.9, 1.1), "elastic_alpha": (10.0, 60.0),
              "mask_down": (0.25, 1.0), "sigma2": (3.0, 50.0)}


def jitter_params(params: dict, rng: np.random.Generator, amount: float = 1.0) -> dict:
    """A frame's parameters: ``params`` with every continuous value nudged at random.

    Args:
        params: the video's base parameters (version 2's or SBI's: told apart by keys).
        rng: randomness.
        amount: multiplies the jitter (0 = a perfectly stable forgery).
    """
    out = dict(params)
    is_sbi = params_version(out) == 3
    table, ranges = (_JITTER_SBI, _RANGE_SBI) if is_sbi else (_JITTER_V2, _RANGE_V2)
    for key, sd in table.items():
        if key in out:
            out[key] = float(out[key] + rng.normal(0, sd * amount))
    for key, (lo, hi) in ranges.items():
        if key in out:
            out[key] = float(np.clip(out[key], lo, hi))
    if is_sbi and "rgb" in out:
        out["rgb"] = [float(v + rng.normal(0, 1.5 * amount)) for v in out["rgb"]]
    if "noise_seed" in out:
        out["noise_seed"] = int(rng.integers(2**31 - 1))
    return out


def temporal_params(method: str, n_frames: int, rng: np.random.Generator,
                    amount: float = 1.0, base: dict | None = None,
                    version: int = DEFAULT_GENERATOR) -> list[dict]:
    """Per-frame parameters of a flickering video forgery.

    One parameter set is drawn for the video, then every frame gets an independent
    jitter of it: the blend boundary, colour and sharpness wobble from frame to frame.

    Args:
        method: one of :data:`METHODS`.
        n_frames: frames in the clip.
        rng: randomness.
        amount: jitter strength (0 = the same parameters on every frame).
        base: the video's parameters (default: drawn from ``rng``).
        version: generator version the base parameters are drawn for.

    Returns:
        ``n_frames`` parameter dicts.
    """
    base = sample_params(method, rng, version) if base is None else dict(base)
    return [jitter_params(base, rng, amount) for _ in range(n_frames)]


# ----------------------------------------------------------------------------- finish

def sample_finish_params(rng: np.random.Generator, quality: tuple[int, int] | None = None,
                         noise: tuple[float, float] = (0.0, 2.5),
                         version: int = DEFAULT_GENERATOR) -> dict:
    """Parameters of the final steps shared by reals and fakes.

    Args:
        rng: randomness.
        quality: JPEG quality range (default: :data:`FINISH_QUALITY` of ``version``).
        noise: sensor noise sigma range.
        version: generator version.
    """
    quality = FINISH_QUALITY[check_version(version)] if quality is None else quality
    return {
        "interp": int(rng.choice([cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC])),
        "quality": int(rng.integers(quality[0], quality[1] + 1)),
        "noise": float(rng.uniform(*noise)),
        "noise_seed": int(rng.integers(2**31 - 1)),
    }


def finish(image: np.ndarray, size: int, params: dict) -> np.ndarray:
    """The last steps of every benchmark sample: resize, JPEG round trip, noise.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        size: output side (the image is resized to ``size x size``).
        params: from :func:`sample_finish_params`.

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    image = _check_image(image)
    if image.shape[0] != size or image.shape[1] != size:
        image = cv2.resize(image, (size, size), interpolation=int(params["interp"]))
    if params.get("noise", 0) > 0:
        nrng = np.random.default_rng(int(params["noise_seed"]))
        noisy = image.astype(np.float32) + nrng.normal(0, params["noise"], image.shape)
        image = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    quality = int(params.get("quality", 100))
    if quality < 100:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise DataError("JPEG encoding failed")
        image = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


# ----------------------------------------------------------------------------- SBI (v3)
#
# The Self-Blended Images recipe as published (Shiohara & Yamasaki, CVPR 2022, and their
# released training code), used to train the shipped default detector: every step below
# is one of the paper's, with the paper's ranges.

#: SBI's blend ratios: a third of the fakes are partial blends.
SBI_BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


def extend_forehead(landmarks: np.ndarray, height: float = 0.55) -> np.ndarray:
    """The 68 points plus 10 forehead points above the brows (78 in all).

    dlib's 68 points stop at the brows, but face swaps (and SBI's 81-point hull) cover
    the forehead. Each brow point is moved up along the face's vertical axis (chin ->
    nose bridge) by ``height`` x the nose-bridge-to-chin distance, scaled down towards
    the temples so the hull follows the forehead's curve.

    Args:
        landmarks: ``(68, 2)`` points.
        height: forehead height as a fraction of the bridge-to-chin distance.

    Returns:
        ``(78, 2)`` float64 points.
    """
    lm = np.asarray(landmarks, np.float64)
    up = lm[27] - lm[8]  # chin -> top of the nose bridge
    brows = lm[17:27]
    # 0 at the outer brow ends, 1 in the middle: a rounded forehead
    curve = np.sin(np.linspace(0.15, 0.85, 10) * np.pi)
    top = brows + up[None, :] * height * (0.55 + 0.45 * curve)[:, None]
    return np.concatenate([lm, top], axis=0)


def sample_sbi_params(rng: np.random.Generator) -> dict:
    """Draws one SBI forgery's parameters (the published recipe's ranges).

    * source-target augmentation: colour (RGB shift +-20, hue +-0.3*?/sat/val shifts as in
      albumentations' defaults scaled down, brightness/contrast +-0.1) and frequency
      (downscale 0.25-0.5 or sharpen), applied to the source or to the target;
    * mask: hull of the 68 points, or of 78 with the forehead; affine deformation
      (translation +-3 %, scale 0.95-1.05) of the source; elastic deformation of the
      mask; two blurs with random odd kernels; blend ratio from :data:`SBI_BLEND_RATIOS`.
    """
    return {
        "aug_side": int(rng.integers(2)),  # 0: augment the source, 1: the target
        "rgb": [float(v) for v in rng.uniform(-20, 20, 3)],
        "hue": float(rng.uniform(-0.3, 0.3) * 10),  # OpenCV hue units (0-180)
        "sat": float(rng.uniform(-0.3, 0.3) * 30),
        "val": float(rng.uniform(-0.3, 0.3) * 20),
        "brightness": float(rng.uniform(-0.1, 0.1)),
        "contrast": float(rng.uniform(-0.1, 0.1)),
        "colour_p": [bool(v) for v in rng.uniform(0, 1, 3) < 0.3],
        "freq": int(rng.choice(3, p=[0.1, 0.45, 0.45])),  # none, downscale, sharpen
        "down": float(rng.uniform(0.25, 0.5)),
        "sharpen": float(rng.uniform(0.2, 0.5)),
        "forehead": bool(rng.uniform() < 0.5),
        "tx": float(rng.uniform(-0.03, 0.03)),
        "ty": float(rng.uniform(-0.015, 0.015)),
        "scale": float(rng.uniform(0.95, 1 / 0.95)),
        "elastic_alpha": float(rng.uniform(20, 50)),
        "elastic_sigma": float(rng.uniform(5, 9)),
        "elastic_seed": int(rng.integers(2**31 - 1)),
        "mask_down": float(rng.uniform(0.3, 1.0)),  # SBI deforms the mask at a lower size
        "kernel1": int(rng.integers(3, 13)) * 2 + 1,
        "kernel2": int(rng.integers(3, 13)) * 2 + 1,
        "sigma2": float(rng.uniform(5, 46)),
        "ratio": float(rng.choice(SBI_BLEND_RATIOS)),
    }


def _sbi_colour(img: np.ndarray, p: dict) -> np.ndarray:
    """RGB shift, HSV shift and brightness/contrast, each on with probability 0.3."""
    out = img.astype(np.float32)
    use_rgb, use_hsv, use_bc = p["colour_p"]
    if use_rgb:
        out = out + np.asarray(p["rgb"], np.float32)
    if use_hsv:
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
        hsv = hsv.astype(np.float32)
        hsv[..., 0] = np.mod(hsv[..., 0] + p["hue"], 180)
        hsv[..., 1] += p["sat"]
        hsv[..., 2] += p["val"]
        hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
    if use_bc:
        out = out * (1 + p["contrast"]) + 255 * p["brightness"]
    return out


def _sbi_frequency(img: np.ndarray, p: dict) -> np.ndarray:
    """Downscale-upscale (the low-resolution face of a swap) or sharpen."""
    h, w = img.shape[:2]
    if p["freq"] == 1:
        f = p["down"]
        small = cv2.resize(img, (max(2, int(w * f)), max(2, int(h * f))),
                           interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if p["freq"] == 2:
        blur = cv2.GaussianBlur(img, (0, 0), 1.0)
        return img + p["sharpen"] * 2.0 * (img - blur)
    return img


def _elastic(mask: np.ndarray, alpha: float, sigma: float, seed: int) -> np.ndarray:
    """Elastic deformation (Simard et al.) of a mask, displacement ~alpha px smoothed."""
    h, w = mask.shape
    rng = np.random.default_rng(seed)
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, xx + dx, yy + dy, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def sbi_mask(shape, landmarks: np.ndarray, p: dict) -> np.ndarray:
    """SBI's blend mask: hull -> elastic deformation (at a lower size) -> two blurs.

    The first blur followed by keeping only the part that stays at its peak erodes the
    hull by a random margin; the second blur makes the soft edge. The mask is scaled by
    its peak each time (a mask divided by ``max + eps`` and cut at 1 would be empty).

    Returns:
        float32 ``(H, W)`` in ``[0, 1]`` with peak 1 (unless the face is off-image).
    """
    lm = np.asarray(landmarks, np.float64)
    pts = extend_forehead(lm) if p["forehead"] else lm
    h, w = shape[:2]
    mask = hull_mask(shape, pts)
    f = p["mask_down"]
    sh, sw = max(8, int(h * f)), max(8, int(w * f))
    small = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_AREA)
    small = _elastic(small, p["elastic_alpha"] * f * h / 256, max(1.0, p["elastic_sigma"] * f * h / 256),
                     p["elastic_seed"])
    mask = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k1 = max(3, int(p["kernel1"] * h / 256) | 1)
    mask = cv2.GaussianBlur(mask, (k1, k1), 0)
    peak = float(mask.max())
    if peak <= 1e-6:
        return np.zeros((h, w), np.float32)
    mask = mask / peak
    mask[mask < 0.999] = 0  # keep the core that stays at the peak: a random erosion
    k2 = max(3, int(p["kernel2"] * h / 256) | 1)
    mask = cv2.GaussianBlur(mask, (k2, k2), p["sigma2"] * h / 256)
    peak = float(mask.max())
    return (mask / peak if peak > 1e-6 else mask).astype(np.float32)


def sbi(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator | None = None,
        params: dict | None = None) -> tuple[np.ndarray, Forgery]:
    """One Self-Blended Image: the (possibly augmented) real and its blend.

    Source-target augmentation changes one side: with ``aug_side == 0`` the source (the
    blended-in face) is changed and the target stays the real image; with ``aug_side == 1``
    the target is changed, so the returned real is the changed target (a real and its
    blend stay a real pair, as in SBI's batches).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` points of the face in ``image``.
        rng: draws the parameters (ignored when ``params`` is given).
        params: explicit parameters (:func:`sample_sbi_params`).

    Returns:
        ``(real, forgery)``: the real image the blend was made into (uint8) and a
        :class:`Forgery` (method ``sbi``) whose mask is the blend's alpha.

    Raises:
        DataError: bad image or landmarks.
    """
    image, lm, p = _inputs(image, landmarks, rng, params, sample_sbi_params, "sbi")
    base = image.astype(np.float32)
    changed = _sbi_frequency(_sbi_colour(base, p), p)
    if p["aug_side"] == 0:
        source, target = changed, base
    else:
        source, target = base, np.clip(changed, 0, 255)
    size = face_size(lm)
    h, w = image.shape[:2]
    m = _similarity(face_centre(lm), p["scale"], np.array([p["tx"], p["ty"]]) * size)
    source = cv2.warpAffine(source, m, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    mask = sbi_mask(image.shape, lm, p)
    alpha = mask * p["ratio"]
    out = source * alpha[..., None] + target * (1 - alpha[..., None])
    real = np.clip(np.round(target), 0, 255).astype(np.uint8)
    fake = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return real, Forgery(fake, alpha.astype(np.float32), "sbi", dict(p))
