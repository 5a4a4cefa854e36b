"""The embedded P4 benchmark: synthetic persons of interest (PoIs) and their impersonators,
as upper-body pose keypoints (no video, no download).

Each PoI has a body (proportions, place in the frame, the lectern in front) and a
personal gesture style: rhythm and length of gestures, their amplitude, the preferred
hand, beat gestures inside a gesture, posture (shoulder tilt, elbow flare, where the
hands rest), head motion (nods, turns, sway) and a tic (a shrug, a head tilt or touching
the face). A 2-D skeleton driven by the style gives the 12 COCO keypoints of every frame
at 30 fps; then a simulated estimator adds what a real one does: jitter, keypoints
dropped to (0, 0) in short bursts (more often for fast wrists), now and then a whole
frame missed, the far ear hidden when the head turns, wrists hidden behind the lectern.

Real videos are the PoI's style (varying a little from video to video, as from speech
to speech) on the PoI's body. Fake videos are impersonators: another person's style,
partly imitating the PoI, on the PoI's body proportions (as a face-swapped or
re-enacted video keeps the impersonator's movements). Every video holds several
150-frame movements (plus a tail shorter than one), so the paper's majority vote over a
video's movements has something to vote on.

Output (the same files ``dfdetect pose extract`` writes, see ``dfdetect.data.pose``):
``poses/<video_id>.pose.csv``, ``segments.csv``, ``labels.csv``, ``summary.csv``,
``people.json`` (every style and body, for inspection) and ``benchmark.json`` (the build
parameters, written last: a folder without it is rebuilt).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from dfdetect.data import pose
from dfdetect.errors import DataError
from dfdetect.io import atomic_write_text

#: Written last, so its presence means a complete build (same name as the other benchmarks).
COMPLETE_MARKER = "benchmark.json"
FPS = 30.0
FRAME_W, FRAME_H = 1280, 720
TICS = ("shrug", "head_tilt", "touch_face")

#: Style parameters and their ranges; a style is a point of this box, drawn uniformly
#: per person and blended between persons in the normalized [0, 1] box.
STYLE_RANGES = {
    "gesture_rate": (0.35, 1.2),        # gestures per second
    "gesture_duration": (0.7, 2.2),     # seconds
    "amplitude": (0.35, 1.5),           # forearm raise (radians) at the gesture's peak
    "right_hand": (0.1, 0.9),           # probability that a one-hand gesture uses the right
    "both_hands": (0.0, 0.6),           # probability that a gesture uses both hands
    "beat_freq": (1.2, 3.5),            # beats per second inside a gesture
    "beat_amp": (0.0, 0.35),            # radians
    "elbow_flare": (0.05, 0.45),        # upper-arm angle from vertical at rest
    "rest_forearm": (0.9, 1.7),         # forearm angle from vertical at rest (hands forward)
    "rest_drop": (-25.0, 35.0),         # pixels: hands rest this much below the lectern top
    "shoulder_tilt": (-0.07, 0.07),     # radians
    "nod_freq": (0.4, 2.2),             # Hz
    "nod_amp": (2.0, 12.0),             # pixels
    "turn_amp": (0.05, 0.6),            # head yaw amplitude (radians)
    "turn_rate": (0.05, 0.45),          # head turns per second
    "sway_amp": (0.0, 14.0),            # pixels of torso sway
    "sway_freq": (0.1, 0.5),            # Hz
    "tic_rate": (0.1, 0.5),             # tics per second
    "tic_amp": (0.3, 1.0),              # relative strength of the tic
    # The signature of a person's gestures: how they are drawn, not only how often.
    "flare_ratio": (0.05, 1.1),         # elbow flare per radian of forearm raise
    "gesture_lag": (0.0, 0.35),         # seconds the forearm trails the elbow
    "sweep": (-0.7, 0.7),               # lateral stroke of the forearm in a gesture (rad)
    "head_sync": (0.0, 1.0),            # how much the head beats along with the hands
}
STYLE_KEYS = tuple(STYLE_RANGES)


@dataclasses.dataclass(frozen=True)
class Body:
    """Body proportions and framing of a PoI, in pixels of a 1280 x 720 frame."""

    shoulder_width: float
    neck_to_nose: float
    upper_arm: float
    forearm: float
    eye_dx: float
    eye_up: float
    ear_dx: float
    center_x: float
    neck_y: float
    lectern_y: float


@dataclasses.dataclass(frozen=True)
class Style:
    """A person's way of moving: ``values`` in the normalized box, plus a tic kind."""

    values: tuple
    tic: str

    def get(self, key: str) -> float:
        lo, hi = STYLE_RANGES[key]
        return lo + (hi - lo) * float(self.values[STYLE_KEYS.index(key)])

    def blend(self, other: "Style", weight: float) -> "Style":
        """``weight`` of ``other`` and ``1 - weight`` of this style; the tic of the
        dominant one."""
        mixed = (1 - weight) * np.asarray(self.values) + weight * np.asarray(other.values)
        return Style(tuple(float(v) for v in mixed), other.tic if weight >= 0.5 else self.tic)

    def jitter(self, rng: np.random.Generator, amount: float) -> "Style":
        """The same person on another day: each parameter moved by up to ``amount``."""
        vals = np.clip(np.asarray(self.values) + rng.uniform(-amount, amount, len(self.values)),
                       0, 1)
        return Style(tuple(float(v) for v in vals), self.tic)

    def as_dict(self) -> dict:
        return {"tic": self.tic, **{k: round(self.get(k), 4) for k in STYLE_KEYS}}


def random_style(rng: np.random.Generator) -> Style:
    """A new person's style."""
    return Style(tuple(float(v) for v in rng.uniform(0, 1, len(STYLE_KEYS))),
                 str(rng.choice(TICS)))


def random_body(rng: np.random.Generator) -> Body:
    """A new PoI's body and framing."""
    scale = rng.uniform(0.85, 1.15)
    neck_y = rng.uniform(330, 400)
    upper_arm = rng.uniform(120, 150) * scale
    forearm = rng.uniform(105, 135) * scale
    return Body(
        shoulder_width=rng.uniform(200, 270) * scale,
        neck_to_nose=rng.uniform(95, 125) * scale,
        upper_arm=upper_arm,
        forearm=forearm,
        eye_dx=rng.uniform(17, 23) * scale,
        eye_up=rng.uniform(18, 26) * scale,
        ear_dx=rng.uniform(40, 52) * scale,
        center_x=rng.uniform(560, 720),
        neck_y=neck_y,
        # The lectern top is about where resting hands are: whether they show above it
        # is the style's ``rest_drop``.
        lectern_y=neck_y + 0.95 * upper_arm + 0.2 * forearm + rng.uniform(-8, 8),
    )


# --------------------------------------------------------------------------- motion

def _bump(t: np.ndarray, start: float, duration: float) -> np.ndarray:
    """A smooth 0 -> 1 -> 0 envelope (Hann) over [start, start + duration]."""
    u = (t - start) / duration
    env = np.sin(np.pi * np.clip(u, 0, 1)) ** 2
    return np.where((u >= 0) & (u <= 1), env, 0.0)


def _events(rng, rate: float, total: float, min_gap: float = 0.0) -> list[float]:
    """Event start times of a renewal process with ``rate`` per second (gamma gaps:
    more regular than Poisson, as gestures follow speech rhythm)."""
    times, t = [], rng.uniform(-1.0, 1.0) / max(rate, 1e-3)
    shape = 4.0
    while True:
        t += max(min_gap, rng.gamma(shape, 1.0 / (rate * shape)))
        if t >= total:
            return times
        times.append(t)


def _smooth_noise(rng, n: int, scale: float, width: int = 15) -> np.ndarray:
    """Slow random drift: white noise smoothed by a moving average."""
    x = rng.normal(0, 1, n + 2 * width)
    k = np.ones(width) / np.sqrt(width)
    return (np.convolve(x, k, mode="same")[width:width + n]) * scale


def simulate_movement(body: Body, style: Style, frames: int, rng: np.random.Generator,
                      fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
    """The true (noise-free) 12 keypoints of ``frames`` frames.

    Returns:
        ``(points (frames, 12, 2) pixels, visible (frames, 12) bool)`` where ``visible``
        is False for points the scene hides (far ear, wrists behind the lectern).
    """
    t = np.arange(frames) / fps
    total = frames / fps
    g = style.get
    # Torso: sway and breathing bob around the neck; shoulder line tilted.
    sway = g("sway_amp") * np.sin(2 * np.pi * g("sway_freq") * t + rng.uniform(0, 2 * np.pi))
    sway += _smooth_noise(rng, frames, 1.5)
    neck = np.stack([body.center_x + sway,
                     body.neck_y + 1.5 * np.sin(2 * np.pi * 0.25 * t) + _smooth_noise(rng, frames, 1.0)],
                    axis=1)
    tilt = g("shoulder_tilt") + _smooth_noise(rng, frames, 0.01)
    shrug = np.zeros(frames)
    head_roll = _smooth_noise(rng, frames, 0.02)
    touch = {+1: np.zeros(frames), -1: np.zeros(frames)}  # side -> envelope
    for start in _events(rng, g("tic_rate"), total):
        dur = rng.uniform(0.5, 1.2)
        env = _bump(t, start, dur) * g("tic_amp")
        if style.tic == "shrug":
            shrug += 22 * env
        elif style.tic == "head_tilt":
            head_roll += 0.25 * env * (1 if rng.random() < 0.7 else -1)
        else:
            touch[-1 if rng.random() < g("right_hand") else +1] += env
    # Arms: rest posture plus gestures. A gesture flares the elbow, then (after the
    # person's lag) raises the forearm along the person's stroke, with beats inside.
    elbow_up = {-1: np.zeros(frames), +1: np.zeros(frames)}  # -1: right arm (image left)
    fore_up = {-1: np.zeros(frames), +1: np.zeros(frames)}
    stroke = {-1: np.zeros(frames), +1: np.zeros(frames)}
    head_beat = np.zeros(frames)
    lag = g("gesture_lag")
    for start in _events(rng, g("gesture_rate"), total, min_gap=0.3):
        dur = g("gesture_duration") * rng.uniform(0.7, 1.3)
        amp = g("amplitude") * rng.uniform(0.7, 1.3)
        beat = np.sin(2 * np.pi * g("beat_freq") * (t - start))
        env = _bump(t, start, dur) * amp
        env_late = _bump(t, start + lag, dur) * amp * (1 + g("beat_amp") / max(amp, 1e-3) * beat)
        sweep = g("sweep") * np.sin(2 * np.pi * np.clip((t - start - lag) / dur, 0, 1)) \
            * (env_late > 0)
        head_beat += env * beat
        if rng.random() < g("both_hands"):
            sides = {-1: 1.0, +1: rng.uniform(0.7, 1.0)}
        else:
            sides = {-1 if rng.random() < g("right_hand") else +1: 1.0}
        for side, w in sides.items():
            elbow_up[side] += w * env
            fore_up[side] += w * env_late
            stroke[side] += w * sweep
    points = np.zeros((frames, pose.N_KEYPOINTS, 2))
    visible = np.ones((frames, pose.N_KEYPOINTS), bool)
    k = {name: i for i, name in enumerate(pose.KEYPOINT_NAMES)}
    half = body.shoulder_width / 2
    points[:, k["neck"]] = neck
    for side, sh, el, wr in ((-1, "r_shoulder", "r_elbow", "r_wrist"),
                             (+1, "l_shoulder", "l_elbow", "l_wrist")):
        # side -1 is the person's right, which faces the camera on the image's left.
        shoulder = neck + np.stack([side * half * np.cos(tilt),
                                    side * half * np.sin(tilt) - shrug], axis=1)
        lift = np.clip(fore_up[side], 0, None)
        flare = g("elbow_flare") + g("flare_ratio") * elbow_up[side] + 0.9 * touch[side] \
            + _smooth_noise(rng, frames, 0.02)
        elbow = shoulder + body.upper_arm * np.stack([side * np.sin(flare), np.cos(flare)], axis=1)
        # Forearm angle from straight down, turning inward (toward the midline) and up.
        fore = np.minimum(g("rest_forearm") + 0.9 * lift + stroke[side] + 1.6 * touch[side]
                          + _smooth_noise(rng, frames, 0.03), 3.0)
        # Resting forearms point at the camera (foreshortened); raised ones less so.
        reach = body.forearm * np.clip(0.45 + 0.35 * lift + 0.4 * touch[side], 0.3, 1.0)
        wrist = elbow + reach[:, None] * np.stack([-side * np.sin(fore), np.cos(fore)], axis=1)
        wrist[:, 1] += g("rest_drop") * np.clip(1 - lift - touch[side], 0, 1)
        points[:, k[sh]], points[:, k[el]], points[:, k[wr]] = shoulder, elbow, wrist
        visible[:, k[wr]] = wrist[:, 1] < body.lectern_y
        visible[:, k[el]] = elbow[:, 1] < body.lectern_y + 30
    # Head: nods (pitch), turns (yaw), roll; eyes and ears follow the nose.
    nod = g("nod_amp") * np.sin(2 * np.pi * g("nod_freq") * t + rng.uniform(0, 2 * np.pi))
    nod += 8.0 * g("head_sync") * head_beat
    yaw = _smooth_noise(rng, frames, 0.03)
    for start in _events(rng, g("turn_rate"), total):
        yaw += _bump(t, start, rng.uniform(1.0, 2.5)) * g("turn_amp") * rng.choice([-1, 1])
    yaw = np.clip(yaw, -1.2, 1.2)
    center = neck + np.stack([np.zeros(frames), -body.neck_to_nose + nod], axis=1)
    cos_r, sin_r = np.cos(head_roll), np.sin(head_roll)

    def head_point(lateral, depth, up):
        # lateral: + toward the person's left (image right); depth: + toward the camera.
        x = lateral * np.cos(yaw) + depth * np.sin(yaw)
        y = -up
        return center + np.stack([x * cos_r - y * sin_r, x * sin_r + y * cos_r], axis=1)

    r = body.ear_dx
    points[:, k["nose"]] = head_point(0.0, 0.9 * r, 0.0)
    points[:, k["r_eye"]] = head_point(-body.eye_dx, 0.75 * r, body.eye_up)
    points[:, k["l_eye"]] = head_point(body.eye_dx, 0.75 * r, body.eye_up)
    points[:, k["r_ear"]] = head_point(-body.ear_dx, 0.0, body.eye_up * 0.6)
    points[:, k["l_ear"]] = head_point(body.ear_dx, 0.0, body.eye_up * 0.6)
    # An ear disappears behind the head when the face turns away from it.
    visible[:, k["r_ear"]] = yaw < 0.5
    visible[:, k["l_ear"]] = yaw > -0.5
    return points, visible


def estimator_noise(points: np.ndarray, visible: np.ndarray, rng: np.random.Generator,
                    jitter: float = 2.0, dropout: float = 0.02,
                    frame_miss: float = 0.001) -> np.ndarray:
    """What a pose estimator makes of true keypoints: ``(frames, 24)`` features.

    Pixel jitter (more on the wrists), points dropped to (0, 0) in bursts (a dropped
    point stays dropped with probability 0.6 the next frame; fast wrists drop more, as
    motion blur does), whole frames missed, and hidden points never found.
    """
    frames = points.shape[0]
    noisy = points + rng.normal(0, jitter, points.shape)
    wrists = [pose.KEYPOINT_NAMES.index("r_wrist"), pose.KEYPOINT_NAMES.index("l_wrist")]
    noisy[:, wrists] += rng.normal(0, jitter, (frames, 2, 2))
    speed = np.zeros(points.shape[:2])
    speed[1:] = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    p_start = dropout * (1 + np.clip(speed / 15.0, 0, 4))
    dropped = np.zeros_like(visible)
    state = np.zeros(points.shape[1], bool)
    starts = rng.random(points.shape[:2]) < p_start
    stays = rng.random(points.shape[:2]) < 0.6
    for i in range(frames):
        state = np.where(state, stays[i], starts[i])
        dropped[i] = state
    missed = rng.random(frames) < frame_miss
    keep = visible & ~dropped & ~missed[:, None]
    inside = (noisy[..., 0] >= 0) & (noisy[..., 0] < FRAME_W) & \
        (noisy[..., 1] >= 0) & (noisy[..., 1] < FRAME_H)
    keep &= inside
    out = np.where(keep[..., None], noisy, 0.0)
    return out.reshape(frames, pose.N_FEATURES).astype(np.float32)


def render_video(body: Body, style: Style, frames: int, rng: np.random.Generator) -> np.ndarray:
    """One video's estimated keypoints ``(frames, 24)``: a shot of the scene (camera
    framing varies per video), then the estimator."""
    points, visible = simulate_movement(body, style, frames, rng)
    zoom = rng.uniform(0.92, 1.08)
    shift = rng.uniform(-40, 40, 2)
    anchor = np.array([FRAME_W / 2, FRAME_H / 2])
    points = (points - anchor) * zoom + anchor + shift
    return estimator_noise(points, visible, rng, jitter=rng.uniform(1.0, 3.0),
                           dropout=rng.uniform(0.0005, 0.004))


# --------------------------------------------------------------------------- benchmark

@dataclasses.dataclass
class PoseBenchmarkSummary:
    """What a build produced (``report()`` is the line the CLI prints)."""

    out: str
    pois: int
    videos: int
    segments: int
    real_segments: int
    fake_segments: int
    seconds: float
    reused: bool = False

    def report(self) -> str:
        verb = "reused" if self.reused else "built"
        return (f"pose benchmark {verb} at {self.out}: {self.pois} persons of interest, "
                f"{self.videos} videos, {self.segments} movements of "
                f"{pose.SEGMENT_FRAMES} frames ({self.real_segments} real, "
                f"{self.fake_segments} fake) in {self.seconds:.1f} s")


def build_pose_benchmark(out: str | os.PathLike, scale, seed: int = 0,
                         pois: int | None = None, videos_per_poi: int | None = None,
                         segments_per_video: int | None = None,
                         fakes_per_poi: int | None = None, impersonators: int = 3,
                         imitation: tuple[float, float] = (0.0, 0.4),
                         style_drift: float = 0.05) -> PoseBenchmarkSummary:
    """Generate the synthetic PoI pose benchmark into ``out`` (skipped when complete).

    Args:
        out: folder to write.
        scale: the sizes (a :class:`dfdetect.scales.Scale` or any object with its
            ``name``, ``pose_pois``, ``pose_videos_per_poi`` and
            ``pose_segments_per_video``): PoIs, real videos per PoI and movements per
            video come from it unless given.
        seed: everything is drawn from this seed (same seed, same files).
        fakes_per_poi: impersonator videos per PoI (default: as many as real ones).
        impersonators: distinct impersonators per PoI.
        imitation: range of how much of the PoI's style an impersonator copies (0: none,
            1: a perfect impersonation, indistinguishable by construction).
        style_drift: how much a PoI's style varies between their own videos.

    Returns:
        A summary; ``report()`` gives one line.
    """
    start = time.perf_counter()
    out = Path(out)
    sc = scale
    def pick(value, default):
        return int(default if value is None else value)

    n_pois = pick(pois, sc.pose_pois)
    n_real = pick(videos_per_poi, sc.pose_videos_per_poi)
    n_fake = pick(fakes_per_poi, n_real)
    n_segs = pick(segments_per_video, sc.pose_segments_per_video)
    if min(n_pois, n_real, n_segs) < 1 or n_fake < 0:
        raise DataError(f"pose benchmark needs at least one PoI, video and movement "
                        f"(got {n_pois}, {n_real}, {n_segs})", out)
    if (out / COMPLETE_MARKER).exists():
        segments, rows = pose.read_segments(out)
        real = sum(1 for r in rows if r["label"] == 0)
        return PoseBenchmarkSummary(os.fspath(out), len({r.get("poi") for r in rows}),
                                    len({r["video_id"] for r in rows}), len(rows), real,
                                    len(rows) - real, time.perf_counter() - start, reused=True)
    rng = np.random.default_rng(seed)
    people = {}
    videos = []
    for p in range(n_pois):
        poi = f"poi{p}"
        body, style = random_body(rng), random_style(rng)
        imps = [random_style(rng) for _ in range(impersonators)]
        people[poi] = {"body": dataclasses.asdict(body), "style": style.as_dict(),
                       "impersonators": [s.as_dict() for s in imps]}
        for v in range(n_real):
            videos.append((f"{poi}-real-{v:03d}", poi, 0, "real", body,
                           style.jitter(rng, style_drift)))
        for v in range(n_fake):
            imp = int(rng.integers(len(imps)))
            fake_style = style.blend(imps[imp], 1 - rng.uniform(*imitation))
            videos.append((f"{poi}-fake-{v:03d}", poi, 1, f"impersonator{imp}", body,
                           fake_style.jitter(rng, style_drift)))
    items, meta = [], {}
    for vid, poi, label, method, body, style in videos:
        vrng = np.random.default_rng(rng.integers(2 ** 63))
        frames = n_segs * pose.SEGMENT_FRAMES + int(vrng.integers(0, pose.SEGMENT_FRAMES))
        feats = render_video(body, style, frames, vrng)
        tidy = out / "poses" / f"{vid}.pose.csv"
        pose.write_pose_csv(tidy, vid, feats, FPS)
        items.append(pose.VideoPose(vid, "synthetic", frames,
                                    int(np.count_nonzero(pose.detected_counts(feats))), FPS,
                                    len(pose.segment(feats)), os.fspath(tidy)))
        meta[vid] = {"label": label, "poi": poi, "method": method}
    pose.update_dataset(out, items, meta=meta)
    atomic_write_text(out / "people.json", json.dumps(people, indent=2) + "\n")
    segments, rows = pose.read_segments(out)
    real = sum(1 for r in rows if r["label"] == 0)
    info = {"kind": "poses", "scale": sc.name, "seed": seed, "pois": n_pois,
            "real_videos_per_poi": n_real, "fake_videos_per_poi": n_fake,
            "segments_per_video": n_segs, "impersonators": impersonators,
            "imitation": list(imitation), "style_drift": style_drift,
            "videos": len(videos), "segments": len(rows), "real_segments": real}
    atomic_write_text(out / COMPLETE_MARKER, json.dumps(info, indent=1) + "\n")
    return PoseBenchmarkSummary(os.fspath(out), n_pois, len(videos), len(rows), real,
                                len(rows) - real, time.perf_counter() - start)
