"""Procedurally drawn faces: the face source of the benchmark that needs no download.

Each face is drawn from two parameter sets:

* an :class:`Identity` (who): face shape, skin tone, eye / brow / nose / mouth geometry
  and colours, hair style and colour, beard, glasses, ears, clothes, background;
* a :class:`View` (how it is seen right now): head pose (yaw, pitch, roll), position
  and scale in the frame, expression (smile, open mouth, raised brows, blink), gaze,
  light direction, strength and colour, and the camera's sensor noise (``grain``).

:func:`render_face` draws one image and returns it with the 68 facial landmarks in
dlib / face_recognition order (every face starts from
:data:`dfdetect.data.faces.LANDMARK_TEMPLATE`, the median of face_recognition's landmarks
over real face crops, mirrored to be symmetric), so the forgery methods of
:mod:`dfdetect.synthetic.forge` apply to drawn faces exactly as to photos, without running a
landmark model. :func:`face_motion` turns one view into a smooth sequence (head motion,
expression changes, blinks) for the video benchmark.

Everything is a pure function of its arguments; randomness comes from a
``numpy.random.Generator`` passed in, so the same seed draws the same faces.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from dfdetect.data.faces import LANDMARK_TEMPLATE

#: Landmark index groups (dlib 68-point order).
JAW, BROWS, NOSE = slice(0, 17), slice(17, 27), slice(27, 36)
EYE_R, EYE_L, MOUTH_OUT, MOUTH_IN = slice(36, 42), slice(42, 48), slice(48, 60), slice(60, 68)

_SKIN_TONES = np.array([  # RGB, light to dark; an identity interpolates between two
    (255, 224, 196), (241, 194, 160), (224, 172, 135), (198, 142, 105),
    (161, 110, 75), (120, 80, 55), (88, 58, 40),
], float)
_HAIR_COLOURS = np.array([
    (20, 16, 14), (45, 32, 24), (80, 55, 35), (120, 85, 50), (170, 130, 80),
    (205, 170, 115), (110, 45, 25), (150, 150, 150), (215, 215, 210),
], float)
_IRIS_COLOURS = np.array([
    (60, 38, 22), (95, 60, 35), (40, 28, 20), (70, 110, 150), (80, 120, 85),
    (120, 95, 55),
], float)
HAIR_STYLES = ("bald", "short", "long", "bangs", "curly", "bun")


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who is drawn: everything that stays fixed across views and video frames."""

    face_width: float
    jaw_width: float
    chin_length: float
    eye_spacing: float
    eye_size: float
    brow_height: float
    brow_thickness: float
    nose_length: float
    nose_width: float
    mouth_width: float
    lip_fullness: float
    skin: tuple
    blush: float
    lip_colour: tuple
    iris: tuple
    brow_colour: tuple
    hair_style: str
    hair_colour: tuple
    hairline: float
    beard: float
    glasses: int  # 0 none, 1 round, 2 rectangular
    glasses_colour: tuple
    lens_tint: float
    shirt: tuple
    background: tuple
    background2: tuple
    texture_seed: int


@dataclasses.dataclass(frozen=True)
class View:
    """How the face is seen in one image or video frame."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0
    smile: float = 0.0
    mouth_open: float = 0.0
    brow_raise: float = 0.0
    blink: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0
    light_x: float = 0.3
    light_y: float = -0.4
    light: float = 0.35
    light_warmth: float = 0.0
    exposure: float = 1.0
    grain: float = 0.0
    grain_seed: int = 0


def _colour(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> tuple:
    i, j = rng.integers(len(palette), size=2)
    t = rng.uniform()
    c = palette[i] * (1 - t) + palette[j] * t if abs(int(i) - int(j)) <= 1 else palette[i]
    c = c + rng.normal(0, jitter, 3)
    return tuple(float(v) for v in np.clip(c, 0, 255))


def _muted(rng: np.random.Generator, lo: float, hi: float, saturation: float) -> tuple:
    # A grey level plus a modest colour: real backgrounds and clothes are rarely neon.
    c = rng.uniform(lo, hi) + rng.normal(0, saturation, 3)
    return tuple(float(v) for v in np.clip(c, 10, 245))


def random_identity(rng: np.random.Generator) -> Identity:
    """Draw a random identity.

    Args:
        rng: source of randomness.

    Returns:
        An :class:`Identity`.
    """
    skin = _colour(rng, _SKIN_TONES, 6.0)
    skin_arr = np.array(skin)
    lip = skin_arr * np.array([0.92, 0.62, 0.62]) + rng.normal(0, 6, 3)
    if rng.uniform() < 0.25:  # lipstick, kept in plausible reds / pinks
        lip = np.array([rng.uniform(140, 200), rng.uniform(40, 80), rng.uniform(60, 90)])
    style = HAIR_STYLES[int(rng.choice(len(HAIR_STYLES), p=[.08, .30, .27, .13, .12, .10]))]
    hair = _colour(rng, _HAIR_COLOURS, 8.0)
    dark_skin = skin_arr.mean() < 150
    if dark_skin and rng.uniform() < 0.8:
        hair = _colour(rng, _HAIR_COLOURS[:3], 5.0)
    brow = tuple(float(v) for v in np.clip(np.array(hair) * 0.8 + rng.normal(0, 5, 3), 10, 200))
    bg = _muted(rng, 50, 215, 28)
    bg2 = tuple(float(v) for v in np.clip(np.array(bg) + rng.normal(0, 30, 3), 20, 235))
    glasses = int(rng.choice(3, p=[0.72, 0.14, 0.14]))
    return Identity(
        face_width=float(rng.uniform(0.9, 1.1)),
        jaw_width=float(rng.uniform(0.82, 1.1)),
        chin_length=float(rng.uniform(0.9, 1.12)),
        eye_spacing=float(rng.uniform(0.93, 1.07)),
        eye_size=float(rng.uniform(0.85, 1.2)),
        brow_height=float(rng.uniform(-0.06, 0.08)),
        brow_thickness=float(rng.uniform(0.05, 0.11)),
        nose_length=float(rng.uniform(0.88, 1.15)),
        nose_width=float(rng.uniform(0.85, 1.25)),
        mouth_width=float(rng.uniform(0.85, 1.15)),
        lip_fullness=float(rng.uniform(0.7, 1.4)),
        skin=skin,
        blush=float(rng.uniform(0.0, 0.12)),
        lip_colour=tuple(float(v) for v in np.clip(lip, 20, 240)),
        iris=_colour(rng, _IRIS_COLOURS, 6.0),
        brow_colour=brow,
        hair_style=style,
        hair_colour=hair,
        hairline=float(rng.uniform(-1.45, -1.05)),
        beard=float(rng.uniform(0.25, 0.8)) if rng.uniform() < 0.18 else 0.0,
        glasses=glasses,
        glasses_colour=tuple(float(v) for v in (rng.uniform(10, 70, 3) if rng.uniform() < 0.7
                                                 else rng.uniform(60, 200, 3))),
        lens_tint=float(rng.uniform(0.0, 0.25)) if rng.uniform() < 0.3 else 0.0,
        shirt=_muted(rng, 25, 220, 40),
        background=bg,
        background2=bg2,
        texture_seed=int(rng.integers(2**31 - 1)),
    )


def random_view(rng: np.random.Generator, pose: float = 1.0) -> View:
    """Draw a random view (pose, expression, lighting).

    Args:
        rng: source of randomness.
        pose: multiplies the head-pose ranges (0 = frontal).

    Returns:
        A :class:`View`.
    """
    return View(
        yaw=float(rng.uniform(-22, 22) * pose),
        pitch=float(rng.uniform(-12, 12) * pose),
        roll=float(rng.uniform(-10, 10) * pose),
        scale=float(rng.uniform(0.92, 1.08)),
        dx=float(rng.uniform(-0.04, 0.04)),
        dy=float(rng.uniform(-0.04, 0.04)),
        smile=float(np.clip(rng.normal(0.25, 0.35), 0, 1)),
        mouth_open=float(np.clip(rng.normal(-0.1, 0.3), 0, 1)),
        brow_raise=float(np.clip(rng.normal(0.0, 0.4), -0.6, 1)),
        blink=float(rng.uniform(0.7, 1.0)) if rng.uniform() < 0.06 else 0.0,
        gaze_x=float(rng.uniform(-0.5, 0.5)),
        gaze_y=float(rng.uniform(-0.3, 0.3)),
        light_x=float(rng.uniform(-1, 1)),
        light_y=float(rng.uniform(-1, 0.3)),
        light=float(rng.uniform(0.15, 0.5)),
        light_warmth=float(rng.uniform(-0.6, 0.6)),
        exposure=float(rng.uniform(0.85, 1.12)),
        grain=float(rng.uniform(1.0, 4.0)),
        grain_seed=int(rng.integers(2**31 - 1)),
    )


def face_motion(rng: np.random.Generator, n_frames: int, start: View | None = None,
                amount: float = 1.0) -> list[View]:
    """A smooth sequence of views: head motion, expression changes and blinks.

    Args:
        rng: source of randomness.
        n_frames: number of frames.
        start: the first view (default: a random one).
        amount: multiplies the motion ranges (0 = a still face).

    Returns:
        ``n_frames`` views that change smoothly from frame to frame.
    """
    start = start or random_view(rng)
    t = np.linspace(0, 1, max(n_frames, 1))

    def wave(scale: float) -> np.ndarray:
        # Two random low-frequency sines: smooth, never a jump between frames.
        f = rng.uniform(0.3, 1.5, 2)
        p = rng.uniform(0, 2 * np.pi, 2)
        a = rng.uniform(0.4, 1.0, 2)
        w = a[0] * np.sin(2 * np.pi * f[0] * t + p[0]) + 0.5 * a[1] * np.sin(
            2 * np.pi * 2.3 * f[1] * t + p[1])
        return scale * amount * (w - w[0])

    d = {name: wave(s) for name, s in [("yaw", 8), ("pitch", 4), ("roll", 3), ("dx", 0.015),
                                        ("dy", 0.015), ("smile", 0.25), ("mouth_open", 0.3),
                                        ("brow_raise", 0.25), ("gaze_x", 0.3)]}
    blink = np.zeros(n_frames)
    if amount > 0 and n_frames >= 4 and rng.uniform() < 0.6:
        k = int(rng.integers(1, n_frames - 1))
        blink[k] = 1.0
        blink[k - 1] = blink[k + 1] = 0.4
    grain_seeds = rng.integers(2**31 - 1, size=n_frames)
    views = []
    for i in range(n_frames):
        views.append(dataclasses.replace(
            start,
            yaw=start.yaw + d["yaw"][i], pitch=start.pitch + d["pitch"][i],
            roll=start.roll + d["roll"][i], dx=start.dx + d["dx"][i], dy=start.dy + d["dy"][i],
            smile=float(np.clip(start.smile + d["smile"][i], 0, 1)),
            mouth_open=float(np.clip(start.mouth_open + d["mouth_open"][i], 0, 1)),
            brow_raise=float(np.clip(start.brow_raise + d["brow_raise"][i], -0.6, 1)),
            gaze_x=float(np.clip(start.gaze_x + d["gaze_x"][i], -0.6, 0.6)),
            blink=float(max(start.blink, blink[i])),
            grain_seed=int(grain_seeds[i]),
        ))
    return views


# ----------------------------------------------------------------------------- geometry

def _depth(p: np.ndarray) -> np.ndarray:
    """Approximate depth of template-like points on a head-shaped surface."""
    x, y = p[:, 0], p[:, 1]
    z = 0.95 * np.sqrt(np.clip(1 - (x / 1.25) ** 2 - ((y - 0.25) / 2.0) ** 2, 0, 1))
    return z


def _landmarks_3d(ident: Identity, view: View) -> np.ndarray:
    p = LANDMARK_TEMPLATE.copy()
    # identity shape
    p[:, 0] *= ident.face_width
    jaw = p[JAW]
    lower = np.clip((jaw[:, 1] - 0.3) / 1.45, 0, 1)
    jaw[:, 0] *= 1 + (ident.jaw_width - 1) * lower
    jaw[:, 1] = np.where(jaw[:, 1] > 0.6, 0.6 + (jaw[:, 1] - 0.6) * ident.chin_length, jaw[:, 1])
    p[JAW] = jaw
    for eye, sign in ((EYE_R, -1), (EYE_L, 1)):
        c = p[eye].mean(0)
        c2 = np.array([c[0] * ident.eye_spacing / ident.face_width, c[1]])
        p[eye] = c2 + (p[eye] - c) * ident.eye_size
    p[BROWS, 1] += ident.brow_height - 0.12 * view.brow_raise
    p[BROWS, 0] *= ident.eye_spacing / ident.face_width * 0.5 + 0.5
    nose = p[NOSE]
    nose[:, 1] = nose[:, 1] * ident.nose_length
    nose[4:, 0] *= ident.nose_width
    p[NOSE] = nose
    mouth = slice(48, 68)
    mc = np.array([0.0, 0.99 * ident.nose_length ** 0.5 * ident.chin_length ** 0.3])
    m = p[mouth] - np.array([0.0, 0.99])
    m[:, 0] *= ident.mouth_width
    m[:, 1] *= ident.lip_fullness
    p[mouth] = m + mc
    # expression
    eyes_open = 1.0 - 0.92 * view.blink
    for eye in (EYE_R, EYE_L):
        e = p[eye]
        mid = (e[0, 1] + e[3, 1]) / 2
        e[:, 1] = mid + (e[:, 1] - mid) * eyes_open
        p[eye] = e
    corners = [48, 54, 60, 64]
    p[corners, 0] += np.sign(p[corners, 0]) * 0.07 * view.smile
    p[corners, 1] -= 0.07 * view.smile
    p[[49, 53, 50, 52], 1] -= 0.015 * view.smile
    drop = 0.28 * view.mouth_open
    p[[55, 56, 57, 58, 59, 65, 66, 67], 1] += drop
    p[[60, 64], 1] += drop * 0.45
    chin = p[JAW]
    chin[:, 1] += drop * 0.6 * np.clip((chin[:, 1] - 0.9) / 0.85, 0, 1)
    p[JAW] = chin
    z = _depth(p)
    z[JAW] *= 0.55
    z[[27, 28, 29, 30]] += [0.08, 0.17, 0.3, 0.42]
    z[31:36] += [0.12, 0.22, 0.28, 0.22, 0.12]
    z[36:48] -= 0.08
    z[48:68] += 0.06
    return np.column_stack([p, z])


def _rotation(view: View) -> np.ndarray:
    y, x, r = np.radians([view.yaw, view.pitch, view.roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


class _Projector:
    """Head coordinates (template units, 3-D) -> canvas pixels, weak perspective."""

    def __init__(self, view: View, size: int):
        self.rot = _rotation(view)
        self.unit = size * 0.19 * view.scale
        self.centre = np.array([size * (0.5 + view.dx), size * (0.44 + view.dy)])
        self.pivot = np.array([0.0, 0.4, 0.0])

    def __call__(self, pts3: np.ndarray) -> np.ndarray:
        q = (pts3 - self.pivot) @ self.rot.T + self.pivot
        return q[:, :2] * self.unit + self.centre

    def facing(self) -> np.ndarray:
        return self.rot @ np.array([0.0, 0.0, 1.0])


def _ellipse_pts(cx, cy, rx, ry, t0, t1, n, z=0.0, power=2.0) -> np.ndarray:
    """Points on a (super)ellipse; ``power`` > 2 gives a squarer, skull-like outline."""
    t = np.linspace(t0, t1, n)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / power
    zz = np.broadcast_to(z, t.shape) if np.ndim(z) == 0 else z
    return np.column_stack([cx + rx * np.sign(c) * np.abs(c) ** e,
                            cy + ry * np.sign(s) * np.abs(s) ** e, zz])


# ----------------------------------------------------------------------------- drawing

_SHIFT = 4  # fixed-point bits for anti-aliased OpenCV drawing


def _poly(img, pts, colour, alpha=1.0):
    pts_i = np.round(np.asarray(pts)[:, :2] * (1 << _SHIFT)).astype(np.int32)
    if alpha >= 1.0:
        cv2.fillPoly(img, [pts_i], tuple(float(c) for c in colour), cv2.LINE_AA, _SHIFT)
    else:
        layer = img.copy()
        cv2.fillPoly(layer, [pts_i], tuple(float(c) for c in colour), cv2.LINE_AA, _SHIFT)
        cv2.addWeighted(layer, alpha, img, 1 - alpha, 0, dst=img)


def _mask(shape, pts, blur=0.0) -> np.ndarray:
    m = np.zeros(shape[:2], np.float32)
    pts_i = np.round(np.asarray(pts)[:, :2] * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(m, [pts_i], 1.0, cv2.LINE_AA, _SHIFT)
    if blur > 0:
        m = _blur(m, blur)
    return m


def _line(img, pts, colour, thickness, closed=False):
    pts_i = np.round(np.asarray(pts)[:, :2] * (1 << _SHIFT)).astype(np.int32)
    cv2.polylines(img, [pts_i], closed, tuple(float(c) for c in colour),
                  max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def _blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a sparse mask, computed only around its non-zero box."""
    x, y, w, h = cv2.boundingRect((mask > 0).astype(np.uint8))
    if w == 0 or h == 0 or sigma <= 0:
        return mask
    pad = int(3 * sigma) + 2
    H, W = mask.shape[:2]
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(W, x + w + pad), min(H, y + h + pad)
    out = np.zeros_like(mask)
    out[y0:y1, x0:x1] = cv2.GaussianBlur(mask[y0:y1, x0:x1], (0, 0), sigma)
    return out


def _blend(img, mask, colour, strength=1.0):
    # Only the bounding box of the mask is touched: most masks cover a small feature.
    x, y, w, h = cv2.boundingRect((mask > 1e-3).view(np.uint8) if mask.dtype == bool
                                  else (mask > 1e-3).astype(np.uint8))
    if w == 0 or h == 0:
        return
    m = mask[y:y + h, x:x + w, None] * np.float32(strength)
    roi = img[y:y + h, x:x + w]
    roi += m * (np.asarray(colour, np.float32) - roi)


def _smooth_curve(pts: np.ndarray, n: int = 40) -> np.ndarray:
    """Catmull-Rom-like resampling so drawn outlines have no corners."""
    pts = np.asarray(pts, float)
    t = np.linspace(0, 1, len(pts))
    tt = np.linspace(0, 1, n)
    return np.column_stack([np.interp(tt, t, pts[:, k]) for k in range(pts.shape[1])]) if len(
        pts) < 4 else _catmull(pts, n)


def _catmull(p: np.ndarray, n: int) -> np.ndarray:
    """Catmull-Rom spline through ``p`` (vectorised): ``max(2, n // segments)`` points
    per segment."""
    p = np.vstack([p[0], p, p[-1]])
    seg = len(p) - 3
    k = max(2, n // seg)
    t = np.linspace(0, 1, k)
    ts = [t[:-1]] * (seg - 1) + [t]
    idx = np.concatenate([np.full(len(x), i) for i, x in enumerate(ts)])
    tt = np.concatenate(ts)[:, None]
    p0, p1, p2, p3 = p[idx], p[idx + 1], p[idx + 2], p[idx + 3]
    t2, t3 = tt * tt, tt * tt * tt
    return 0.5 * ((2 * p1) + (-p0 + p2) * tt + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * t3)


def render_face(identity: Identity, view: View, size: int = 256,
                supersample: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw a face.

    Args:
        identity: who is drawn.
        view: pose, expression and lighting.
        size: side of the square image in pixels (the face spans about 45 % of it).
        supersample: drawing scale before the final area-averaged shrink (default 2
            below 128 px, else 1).

    Returns:
        ``(rgb, landmarks)``: a ``size x size x 3`` uint8 image and the 68 landmarks as a
        float ``(68, 2)`` array of ``(x, y)`` pixel coordinates in dlib order.
    """
    # draw big and shrink with area averaging; above 128 px OpenCV's anti-aliasing alone
    # looks the same once the face is cropped and resized, at a quarter of the cost
    ss = supersample or (2 if size < 128 else 1)
    S = size * ss
    ident = identity
    tex_rng = np.random.default_rng(ident.texture_seed)
    proj = _Projector(view, S)
    lm3 = _landmarks_3d(ident, view)
    lm = proj(lm3)
    facing = proj.facing()
    light = np.array([view.light_x, view.light_y], float)
    light = [float(v) for v in light / (np.linalg.norm(light) + 1e-6)]

    # ---- background: two-colour gradient + soft shapes (a room, a window)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
    ang = (ident.texture_seed % 360) * np.pi / 180
    g = np.clip(0.5 + 0.7 * ((xx - 0.5) * np.cos(ang) + (yy - 0.5) * np.sin(ang)), 0, 1)[..., None]
    img = (np.array(ident.background, np.float32) * (1 - g)
           + np.array(ident.background2, np.float32) * g)
    for _ in range(int(tex_rng.integers(1, 4))):
        c = tex_rng.uniform(0, S, 2)
        r = tex_rng.uniform(0.1, 0.4, 2) * S
        m = np.zeros((S, S), np.float32)
        if tex_rng.uniform() < 0.5:
            cv2.ellipse(m, (int(c[0]), int(c[1])), (int(r[0]), int(r[1])), 0, 0, 360, 1.0, -1)
        else:
            cv2.rectangle(m, (int(c[0] - r[0]), int(c[1] - r[1])), (int(c[0] + r[0]), int(c[1] + r[1])),
                          1.0, -1)
        m = _blur(m, S * tex_rng.uniform(0.005, 0.03))
        _blend(img, m, tex_rng.uniform(30, 230, 3), tex_rng.uniform(0.2, 0.6))
    img = cv2.GaussianBlur(img, (0, 0), S * 0.004)

    skin = np.array(ident.skin, np.float32)
    hair = np.array(ident.hair_colour, np.float32)
    unit = proj.unit

    # ---- hair behind the head (long styles, volume)
    if ident.hair_style == "long":
        back = np.vstack([_ellipse_pts(0, -0.1, 1.36 * ident.face_width, 1.8, np.pi, 2 * np.pi,
                                       30, -0.4),
                          [[1.42, 1.3, -0.4], [1.5, 2.7, -0.5], [-1.5, 2.7, -0.5],
                           [-1.42, 1.3, -0.4]]])
        _poly(img, proj(back), hair * 0.72)
    elif ident.hair_style == "curly":
        _poly(img, proj(_ellipse_pts(0, -0.4, 1.55 * ident.face_width, 1.7, 0, 2 * np.pi, 40,
                                     -0.4)), hair * 0.72)
    elif ident.hair_style == "bun":
        _poly(img, proj(_ellipse_pts(0, -1.85, 0.55, 0.42, 0, 2 * np.pi, 24, -0.4)), hair * 0.8)

    # ---- shirt, then the neck on top of it; the body barely follows the head's rotation
    base = _Projector(dataclasses.replace(view, yaw=view.yaw * 0.3, pitch=0.0,
                                          roll=view.roll * 0.3), S)
    sh = base(_ellipse_pts(0, 3.55, 2.9, 1.45, np.pi, 2 * np.pi, 40))
    sh = np.vstack([sh, [[sh[-1, 0], S * 2.0], [sh[0, 0], S * 2.0]]])
    _poly(img, sh, ident.shirt)
    neck = np.vstack([[[-0.6, 0.9, -0.3], [0.6, 0.9, -0.3]],
                      _ellipse_pts(0, 2.05, 0.66, 0.45, 0.0, np.pi, 20, -0.3)])
    _poly(img, base(neck), skin * 0.8)
    # the shadow the jaw casts on the neck
    _blend(img, _mask(img.shape, base(np.array([[-0.6, 0.9, 0], [0.6, 0.9, 0], [0.6, 1.9, 0],
                                                 [-0.6, 1.9, 0]])), 0.12 * proj.unit),
           skin * 0.55, 0.5)

    # ---- ears
    ear_colour = skin * 0.9
    for sx in (-1, 1):
        ear = _ellipse_pts(sx * 1.13 * ident.face_width, 0.3, 0.22, 0.42, 0, 2 * np.pi, 24, -0.35)
        _poly(img, proj(ear), ear_colour)
        inner = _ellipse_pts(sx * 1.15 * ident.face_width, 0.32, 0.1, 0.25, 0, 2 * np.pi, 16, -0.3)
        _poly(img, proj(inner), skin * 0.7, 0.6)

    # ---- face: jaw + forehead
    jaw3 = lm3[JAW]
    fw = ident.face_width
    fore = _ellipse_pts(0, 0.02, 1.12 * fw, 1.55, 0.0, -np.pi, 32, power=2.4)
    fore[:, 2] = _depth(fore[:, :2]) * 0.6
    outline3 = np.vstack([jaw3, fore[1:-1]])
    outline = proj(outline3)
    face_mask = _mask(img.shape, outline)
    face = np.empty_like(img)
    face[:] = skin
    # roundness: darker towards the outline, lit side brighter
    dist = cv2.distanceTransform((face_mask > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    round_ = np.clip(dist * np.float32(1 / (0.55 * unit)), 0, 1) ** np.float32(0.6)
    cx, cy = proj(np.array([[0.0, 0.4, 0.9]]))[0]
    lit = ((xx * S - float(cx)) * light[0] + (yy * S - float(cy)) * light[1]) * np.float32(
        1 / (1.6 * unit))
    lit = np.clip(lit, -1, 1, out=lit)
    shade = (0.78 + 0.22 * round_) * (1 + np.float32(view.light) * lit)
    face *= shade[..., None]
    # skin texture and blush
    tex = cv2.GaussianBlur(tex_rng.normal(0, 1, (S, S)).astype(np.float32), (0, 0), 1.2 * ss)
    face *= (1 + 0.035 * tex)[..., None]
    for sx in (-1, 1):
        cheek = proj(np.array([[sx * 0.62, 0.62, 0.6]]))[0]
        m = np.zeros((S, S), np.float32)
        cv2.circle(m, (int(cheek[0]), int(cheek[1])), int(0.32 * unit), 1.0, -1)
        m = _blur(m, 0.18 * unit)
        _blend(face, m, skin * np.array([1.0, 0.72, 0.72]), ident.blush)
    img = img * (1 - face_mask[..., None]) + face * face_mask[..., None]

    def shadow(pts2, blur, strength, colour=None):
        m = _mask(img.shape, pts2, blur) * face_mask
        _blend(img, m, skin * 0.55 if colour is None else colour, strength)

    # eye sockets and nose shading
    for eye in (EYE_R, EYE_L):
        c = lm3[eye].mean(0)
        sock = _ellipse_pts(c[0], c[1] - 0.08, 0.36 * ident.eye_size, 0.24, 0, 2 * np.pi, 20, c[2])
        shadow(proj(sock), 0.12 * unit, 0.3)
    side = 1 if light[0] < 0 else -1  # the side of the nose away from the light
    nose_side = np.array([[side * 0.06, -0.02, 0.12], [side * 0.12, 0.3, 0.3],
                          [side * 0.2, 0.55, 0.35], [side * 0.26, 0.62, 0.25],
                          [side * 0.05, 0.6, 0.4], [side * 0.02, 0.3, 0.35]])
    nose_side[:, 1] *= ident.nose_length
    shadow(proj(nose_side), 0.07 * unit, 0.35)
    under = lm3[31:36].mean(0) + np.array([0, 0.1, 0])
    shadow(proj(_ellipse_pts(under[0], under[1], 0.28 * ident.nose_width, 0.08, 0, 2 * np.pi, 16,
                             under[2])), 0.06 * unit, 0.35)
    tip = proj(lm3[30:31] + np.array([[-light[0] * 0.04, -0.04 - 0.03 * light[1], 0]]))[0]
    m = np.zeros((S, S), np.float32)
    cv2.circle(m, (int(tip[0]), int(tip[1])), max(1, int(0.06 * unit)), 1.0, -1)
    _blend(img, _blur(m, 0.05 * unit), np.minimum(skin * 1.25, 255), 0.35)
    for a, b in ((31, 32), (34, 35)):  # nostrils: soft, not holes
        c = (lm[a] + lm[b]) / 2 + np.array([0, 0.015 * unit])
        m = np.zeros((S, S), np.float32)
        cv2.ellipse(m, (int(c[0]), int(c[1])), (max(1, int(0.055 * unit * ident.nose_width)),
                                                 max(1, int(0.028 * unit))), 0, 0, 360, 1.0, -1)
        _blend(img, _blur(m, 0.015 * unit), skin * 0.35, 0.75)
    for a in (31, 35):  # the wings of the nose: a faint crease
        c = lm[a] + np.array([np.sign(lm[a, 0] - lm[33, 0]) * 0.02 * unit, -0.06 * unit])
        m = np.zeros((S, S), np.float32)
        cv2.ellipse(m, (int(c[0]), int(c[1])), (max(1, int(0.08 * unit)), max(1, int(0.09 * unit))),
                    0, 30 if a == 35 else 150, 150 if a == 35 else 270, 1.0,
                    max(1, int(0.02 * unit)), cv2.LINE_AA)
        _blend(img, _blur(m, 0.01 * unit), skin * 0.6, 0.5)

    # beard / stubble
    if ident.beard > 0:
        b3 = np.vstack([lm3[3:14], [[lm3[54, 0] + 0.08, lm3[54, 1] - 0.05, 0.5]],
                        lm3[[55, 56, 57, 58, 59]],
                        [[lm3[48, 0] - 0.08, lm3[48, 1] - 0.05, 0.5]]])
        bm = _mask(img.shape, proj(b3), 0.05 * unit)
        grain = np.clip(0.6 + 0.6 * cv2.GaussianBlur(tex_rng.normal(0, 1, (S, S)).astype(np.float32),
                                                      (0, 0), 0.7), 0, 1)
        _blend(img, bm * grain, hair * 0.9, ident.beard)
        mous = np.vstack([lm3[[48, 49, 50, 51, 52, 53, 54]],
                          lm3[[35, 34, 33, 32, 31]] + [0, 0.05, 0]])
        _blend(img, _mask(img.shape, proj(mous), 0.03 * unit) * grain, hair * 0.9, ident.beard * 0.9)

    # ---- mouth
    lipc = np.array(ident.lip_colour, np.float32) * (0.85 + 0.15 * shade[int(lm[51, 1]) % S,
                                                                       int(lm[51, 0]) % S])
    outer = _smooth_curve(np.vstack([lm[48:60], lm[48]]), 60)
    _poly(img, outer, lipc)
    upper = np.vstack([lm[48:55], lm[[64, 63, 62, 61, 60]]])
    _poly(img, _smooth_curve(np.vstack([upper, upper[0]]), 50), lipc * 0.85)
    gap = np.mean(lm[[65, 66, 67], 1]) - np.mean(lm[[61, 62, 63], 1])
    if gap > 0.03 * unit:
        inner = _smooth_curve(np.vstack([lm[60:68], lm[60]]), 50)
        _poly(img, inner, (45, 18, 20))
        teeth_top = lm[[60, 61, 62, 63, 64]]
        teeth = np.vstack([teeth_top, teeth_top[::-1] + [0, min(gap * 0.45, 0.09 * unit)]])
        tm = _mask(img.shape, teeth) * _mask(img.shape, inner)
        _blend(img, tm, (205, 198, 182), 0.85)
    else:
        _line(img, _smooth_curve(lm[[48, 60, 61, 62, 63, 64, 54]], 30), lipc * 0.5,
              max(1, 0.025 * unit))
    low = (lm[57] + lm[66]) / 2
    m = np.zeros((S, S), np.float32)
    cv2.ellipse(m, (int(low[0]), int(low[1] - 0.01 * unit)), (max(1, int(0.12 * unit)),
                                                              max(1, int(0.03 * unit))), 0, 0, 360,
                1.0, -1)
    _blend(img, _blur(m, 0.03 * unit), np.minimum(lipc * 1.3, 255), 0.35)
    chin_sh = lm[57] + np.array([0, 0.12 * unit])
    m = np.zeros((S, S), np.float32)
    cv2.ellipse(m, (int(chin_sh[0]), int(chin_sh[1])), (max(1, int(0.2 * unit)), max(1, int(0.06 * unit))),
                0, 0, 360, 1.0, -1)
    _blend(img, _blur(m, 0.05 * unit) * face_mask, skin * 0.6, 0.35)

    # ---- eyes
    for eye in (EYE_R, EYE_L):
        e = lm[eye]
        e3 = lm3[eye]
        eye_poly = _smooth_curve(np.vstack([e, e[0]]), 40)
        em = _mask(img.shape, eye_poly)
        c = e.mean(0)
        w = np.linalg.norm(e[3] - e[0])
        if w < 2:
            continue
        sclera = np.array([232, 226, 220], np.float32) * (0.85 + 0.1 * shade[int(c[1]) % S, int(c[0]) % S])
        _blend(img, em, sclera, 1.0)
        iris_c = c + np.array([view.gaze_x * 0.18 * w, view.gaze_y * 0.12 * w])
        r = 0.26 * w
        im = np.zeros((S, S), np.float32)
        cv2.circle(im, (int(iris_c[0]), int(iris_c[1])), max(1, int(r)), 1.0, -1, cv2.LINE_AA)
        _blend(img, im * em, np.array(ident.iris, np.float32), 1.0)
        ring = np.zeros((S, S), np.float32)
        cv2.circle(ring, (int(iris_c[0]), int(iris_c[1])), max(1, int(r)), 1.0,
                   max(1, int(0.18 * r)), cv2.LINE_AA)
        _blend(img, ring * em, np.array(ident.iris, np.float32) * 0.5, 0.8)
        pm = np.zeros((S, S), np.float32)
        cv2.circle(pm, (int(iris_c[0]), int(iris_c[1])), max(1, int(0.45 * r)), 1.0, -1, cv2.LINE_AA)
        _blend(img, pm * em, (12, 10, 10), 1.0)
        hl = iris_c + np.array([-0.35 * r, -0.35 * r])
        hm = np.zeros((S, S), np.float32)
        cv2.circle(hm, (int(hl[0]), int(hl[1])), max(1, int(0.2 * r)), 1.0, -1, cv2.LINE_AA)
        _blend(img, hm * em, (250, 250, 250), 0.9)
        # lids: a dark upper line (lashes), lighter lower line, a crease above
        _line(img, _smooth_curve(e[[0, 1, 2, 3]], 20), (35, 25, 25), max(1, 0.045 * w))
        _line(img, _smooth_curve(e[[3, 4, 5, 0]], 20), skin * 0.6, max(1, 0.02 * w))
        crease = e[[0, 1, 2, 3]] + np.array([0, -0.2 * w]) * [[0.3], [1], [1], [0.3]]
        _line(img, _smooth_curve(crease, 20), skin * 0.7, max(1, 0.025 * w))

    # ---- brows
    for brow in (slice(17, 22), slice(22, 27)):
        b = lm[brow]
        inner_first = brow.start == 22
        th = np.linspace(1.0, 0.55, 5) if inner_first else np.linspace(0.55, 1.0, 5)
        thick = th * ident.brow_thickness * unit
        top = b - np.column_stack([np.zeros(5), thick * 0.55])
        bot = b + np.column_stack([np.zeros(5), thick * 0.45])
        poly = np.vstack([_smooth_curve(top, 20), _smooth_curve(bot, 20)[::-1]])
        bm = _mask(img.shape, poly, 0.015 * unit)
        _blend(img, bm, ident.brow_colour, 0.88)

    # ---- hair on top
    if ident.hair_style != "bald":
        hl = ident.hairline if ident.hair_style != "bangs" else -0.62
        top = _ellipse_pts(0, 0.05, 1.22 * fw, 1.85 if ident.hair_style != "curly" else 2.0,
                           -0.05, -np.pi + 0.05, 40, power=2.6)
        top[:, 2] = 0.3
        wave = np.sin(np.linspace(0, np.pi, 9)) * (hl + 0.35)
        line_x = np.linspace(-1.14 * fw, 1.14 * fw, 9)[::-1]
        line = np.column_stack([line_x, 0.05 + wave * 1.05 - 0.05, np.full(9, 0.5)])
        line[0, 1] = line[-1, 1] = 0.25 if ident.hair_style != "bangs" else 0.1
        cap = np.vstack([top, line[::-1]])
        cap_pts = _smooth_curve(proj(cap), 90)
        cm = _mask(img.shape, cap_pts, 0.01 * unit)
        strands = cv2.GaussianBlur(tex_rng.normal(0, 1, (S, S)).astype(np.float32), (0, 0), 1.0)
        strands = cv2.blur(strands, (1, max(3, int(0.25 * unit))))
        hair_img = hair[None, None, :] * (0.85 + 0.5 * strands[..., None])
        hair_img *= (1 + np.float32(0.5 * view.light) * lit)[..., None]
        img = img * (1 - cm[..., None]) + hair_img * cm[..., None]
    elif ident.hairline > -1.2:  # a buzz cut: faint darker cap
        cap = _ellipse_pts(0, 0.05, 1.15 * fw, 1.65, -0.2, -np.pi + 0.2, 30)
        cap = np.vstack([cap, [[-1.0 * fw, -0.6, 0], [0, -1.05, 0], [1.0 * fw, -0.6, 0]]])
        _blend(img, _mask(img.shape, proj(cap), 0.05 * unit), hair, 0.3)

    # ---- glasses
    if ident.glasses:
        gc = ident.glasses_colour
        th = max(1, 0.035 * unit)
        rims = []
        for eye in (EYE_R, EYE_L):
            c3 = lm3[eye].mean(0) + np.array([0, 0.0, 0.25])
            if ident.glasses == 1:
                rim = _ellipse_pts(c3[0], c3[1], 0.33, 0.26, 0, 2 * np.pi, 36, c3[2])
            else:
                hw, hh = 0.36, 0.22
                rim = np.array([[c3[0] - hw, c3[1] - hh, c3[2]], [c3[0] + hw, c3[1] - hh, c3[2]],
                                [c3[0] + hw * 0.95, c3[1] + hh, c3[2]],
                                [c3[0] - hw * 0.95, c3[1] + hh, c3[2]]])
                rim = _smooth_curve(np.vstack([rim, rim[0]]), 40)
            rim2 = proj(rim)
            if ident.lens_tint > 0:
                _blend(img, _mask(img.shape, rim2), (40, 40, 50), ident.lens_tint)
            rims.append(rim2)
            _line(img, rim2, gc, th, closed=True)
        l3 = lm3[EYE_R].mean(0)
        r3 = lm3[EYE_L].mean(0)
        bridge = proj(np.array([[l3[0] + 0.3, l3[1] - 0.05, 0.6], [0, l3[1] - 0.1, 0.65],
                                [r3[0] - 0.3, r3[1] - 0.05, 0.6]]))
        _line(img, bridge, gc, th)
        for sx, c3 in ((-1, l3), (1, r3)):
            edge = lm[0] if sx < 0 else lm[16]  # the temple ends where the face outline is
            temple = np.vstack([proj(np.array([[c3[0] + sx * 0.34, c3[1] - 0.05, 0.5]])), edge])
            if facing[0] * sx > -0.25:  # the temple on the far side hides behind the head
                _line(img, temple, gc, th)

    # ---- global light colour, exposure, a little lens blur
    warm = np.array([1 + 0.08 * view.light_warmth, 1.0, 1 - 0.08 * view.light_warmth], np.float32)
    img = img * warm * view.exposure
    img = cv2.GaussianBlur(img, (0, 0), 0.6 * ss)
    img = cv2.resize(np.clip(img, 0, 255), (size, size), interpolation=cv2.INTER_AREA)
    if view.grain > 0:  # the camera's sensor noise, fine-grained like a photo's
        grain = np.random.default_rng(view.grain_seed).normal(0, view.grain, img.shape)
        img = img + cv2.GaussianBlur(grain.astype(np.float32), (0, 0), 0.5)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), lm / ss


def random_face(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Draw a random identity in a random view (convenience for tests and previews)."""
    return render_face(random_identity(rng), random_view(rng), size)
