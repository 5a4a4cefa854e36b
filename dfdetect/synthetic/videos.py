"""The embedded video benchmark (P2, P3): for every identity one real clip and one fake
clip of ``F`` frames. Drawn faces move their head and change expression, stills become
clips by smooth random camera motion, real videos are used as they are; the fakes flicker
(:func:`dfdetect.synthetic.forge.temporal_params`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np

from dfdetect.data import faces, video
from dfdetect.data.faces import landmark_problem
from dfdetect.data.sample import Sample
from dfdetect.data.video import sample_indices
from dfdetect.errors import DataError
from dfdetect.synthetic import forge, procedural
from dfdetect.synthetic.build import (TAG, Samples, imap, mask_relpath, methods_for,
                                      next_method, run_tasks, safe_id, sample_rng, short_reason,
                                      source_name, splits_and_donors, worker_pool)
from dfdetect.synthetic.canvas import (MARGIN, SHIFT, WORK_SCALE, apply_affine, crop_affine,
                                       mask_png, warp, write_png)
from dfdetect.synthetic.identities import (list_folder, probe_video, procedural_skin,
                                           render_size, usable_stills)


def _crop_matrix(centre: np.ndarray, side: float, angle: float, work: int) -> np.ndarray:
    """Affine taking a square of ``side`` around ``centre`` (rotated by ``angle`` degrees)
    to a ``work x work`` canvas."""
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle),
                                work / float(side))
    m[:, 2] += np.array([work / 2.0, work / 2.0]) - np.asarray(centre, np.float64)
    return m


def _smooth(values: np.ndarray, k: int = 3) -> np.ndarray:
    """Moving average along axis 0 (edges padded): a face tracker's steadiness."""
    if len(values) < 2:
        return values
    pad = np.concatenate([values[:1].repeat(k // 2, 0), values, values[-1:].repeat(k // 2, 0)])
    kernel = np.ones(k) / k
    return np.stack([np.convolve(pad[:, j], kernel, mode="valid")
                     for j in range(values.shape[1])], axis=1)


def _tracked_crops(lms: list[np.ndarray], rng: np.random.Generator, work: int,
                   shape) -> list[np.ndarray]:
    """Per-frame crop matrices that follow a moving face (smoothed), fixed size."""
    sizes = [forge.face_size(lm) for lm in lms]
    side = float(np.median(sizes)) * rng.uniform(*MARGIN)
    side = min(side, float(min(shape[:2])) * 1.05)
    offset = rng.uniform(-SHIFT, SHIFT, 2) * side
    centres = _smooth(np.array([forge.face_centre(lm) for lm in lms])) + offset
    return [_crop_matrix(c, side, 0.0, work) for c in centres]


def _camera_crops(lm: np.ndarray, shape, n: int, rng: np.random.Generator,
                  work: int) -> list[np.ndarray]:
    """Per-frame crop matrices of a still: a smooth random camera drift, zoom and roll."""
    side = forge.face_size(lm) * rng.uniform(*MARGIN)
    limit = float(min(shape[:2]))
    if side > limit:
        side = limit * rng.uniform(0.88, 1.0)
    centre = forge.face_centre(lm) + rng.uniform(-SHIFT, SHIFT, 2) * side
    t = np.linspace(0, 1, n)

    def wave(amp):
        f, ph = rng.uniform(0.25, 1.0), rng.uniform(0, 2 * np.pi)
        w = np.sin(2 * np.pi * f * t + ph)
        return amp * (w - w[0]) / 2 + amp * rng.uniform(-0.5, 0.5)

    dx, dy = wave(0.05 * side), wave(0.05 * side)
    zoom = 1.0 + np.abs(wave(0.05))
    roll = wave(3.0)
    return [_crop_matrix(centre + np.array([dx[i], dy[i]]), side / zoom[i], roll[i], work)
            for i in range(n)]


def _clip_windows(n_frames_total: int, clips: int, frames: int) -> list[list[int]]:
    """``clips`` windows over a video, ``frames`` evenly spaced indices in each."""
    out = []
    edges = np.linspace(0, n_frames_total, clips + 1)
    for c in range(clips):
        lo, hi = int(edges[c]), max(int(edges[c]) + 1, int(edges[c + 1]))
        idx = sample_indices(hi - lo, frames) + lo
        out.append([int(i) for i in idx])
    return out


def _video_frames(path: str, indices: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of a real video and their landmarks (gaps filled from neighbours).

    Raises:
        DataError: too few frames decode or show a face.
    """
    frames = dict(video.read_frames(path, indices=indices, max_side=640))
    imgs, lms = [], []
    for i in indices:
        if i not in frames:
            imgs.append(None)
            lms.append(None)
            continue
        lm = faces.face_landmarks(frames[i])
        if lm is not None and landmark_problem(lm, frames[i].shape) is not None:
            lm = None
        imgs.append(frames[i])
        lms.append(lm)
    found = [k for k, lm in enumerate(lms) if lm is not None]
    if len(found) < max(1, int(np.ceil(0.7 * len(indices)))):
        raise DataError(f"a face in only {len(found)} of {len(indices)} frames of the clip "
                        f"(frames {indices[0]}-{indices[-1]})", path)
    for k in range(len(indices)):  # fill gaps with the nearest frame that has a face
        if lms[k] is None:
            j = min(found, key=lambda f: abs(f - k))
            imgs[k], lms[k] = imgs[j], lms[j]
    return imgs, lms


def _clip_source(ref: dict, seed: int, unit: int, frames: int, work: int, views=None):
    """(images, landmarks, crop matrices or None) of one clip's source frames."""
    if ref["kind"] == "procedural":
        ident = procedural.random_identity(sample_rng(seed, TAG["identity"], ref["index"]))
        imgs, lms = [], []
        for v in views:
            img, lm = procedural.render_face(ident, v, render_size(work))
            imgs.append(img)
            lms.append(lm)
        return imgs, lms
    if ref["kind"] == "video":
        return _video_frames(ref["path"], ref["indices"])
    img = faces.load_image(ref["path"])
    lm = np.asarray(ref["landmarks"])
    return [img] * frames, [lm] * frames


def _make_clip(task: dict) -> dict:
    """Worker: one unit -> a real clip, its flickering fake and per-frame masks."""
    try:
        seed, size, n = task["seed"], task["size"], task["frames"]
        rng = sample_rng(seed, TAG["video"], task["unit"])
        work = int(round(size * rng.uniform(*WORK_SCALE)))
        target = task["target"]
        views = dviews = None
        if target["kind"] == "procedural":
            start = procedural.random_view(sample_rng(seed, TAG["view"], target["index"], task["clip"]))
            views = procedural.face_motion(sample_rng(seed, TAG["motion"], task["unit"]), n, start,
                                           amount=float(rng.uniform(0.5, 1.2)))
            if task["donor"] is not None:
                dv = procedural.random_view(sample_rng(seed, TAG["donor"], task["unit"]))
                dviews = [dataclasses.replace(dv, yaw=v.yaw, pitch=v.pitch, roll=v.roll,
                                              scale=v.scale, dx=v.dx, dy=v.dy,
                                              mouth_open=v.mouth_open, smile=v.smile)
                          for v in views]
        imgs, lms = _clip_source(target, seed, task["unit"], n, work, views)
        if target["kind"] == "image":
            mats = _camera_crops(lms[0], imgs[0].shape, n, rng, work)
        else:
            mats = _tracked_crops(lms, rng, work, imgs[0].shape)
        donor_frames = None
        if task["donor"] is not None:
            d = task["donor"]
            if d["kind"] == "video":  # one still of the donor video is enough
                d = dict(d, indices=d["indices"][len(d["indices"]) // 2:][:1])
                dimgs, dlms = _clip_source(d, seed, task["unit"], 1, work)
                dimgs, dlms = dimgs * n, dlms * n
            else:
                dimgs, dlms = _clip_source(d, seed, task["unit"], n, work, dviews)
            dm = crop_affine(dlms[0], dimgs[0].shape, rng, work)
            donor_frames = [(warp(di, dm, work), apply_affine(dm, dl)) for di, dl in zip(dimgs, dlms)]
        version = task.get("generator", forge.DEFAULT_GENERATOR)
        params = forge.temporal_params(task["method"], n, rng,
                                       amount=float(rng.uniform(0.6, 1.5)), version=version)
        fin = forge.sample_finish_params(rng, version=version)
        reals, fakes, masks = [], [], []
        for k in range(n):
            canvas = warp(imgs[k], mats[k], work)
            lm_c = apply_affine(mats[k], lms[k])
            donor = donor_frames[k] if donor_frames else None
            fake = forge.forge(task["method"], canvas, lm_c, rng, donor=donor, params=params[k],
                               version=version)
            f_real = dict(fin, noise_seed=int(rng.integers(2**31 - 1)))
            f_fake = dict(fin, noise_seed=int(rng.integers(2**31 - 1)))
            reals.append(forge.finish(canvas if fake.real is None else fake.real, size, f_real))
            fakes.append(forge.finish(fake.image, size, f_fake))
            masks.append(mask_png(fake.mask, size))
        return {"task": task, "real": reals, "fake": fakes, "mask": masks, "error": None}
    except Exception as err:  # noqa: BLE001
        return {"task": task, "error": short_reason(err, task["path"])}


def build_videos(summary, sc, faces, out: Path, seed, holdout, workers, n_units, size,
                 frames, methods, cache_path, progress) -> None:
    """The video benchmark into ``out`` (:func:`dfdetect.synthetic.benchmark.build_benchmark`
    checked the arguments): ``n_units`` real / fake clip pairs of ``frames`` frames."""
    n_units = int(n_units or max(1, sc.benchmark_videos // 2))
    frames = int(frames or sc.video_frames)
    size = int(size or sc.video_size)
    source = source_name(faces)
    with worker_pool(workers) as pool:
        units = []  # (identity id, path, ref, clip number)
        if faces == "procedural":
            for i in range(n_units):
                units.append((f"p{i:05d}", f"procedural:p{i:05d}",
                              {"kind": "procedural", "index": i}, 0))
        else:
            idents = list_folder(faces)
            videos = [i for i in idents if i.video]
            if videos:
                counts = {}
                for path, total, problem in imap(pool, probe_video,
                                                 [v.files[0] for v in videos], chunksize=1):
                    if problem:
                        summary.skipped_files[path] = problem
                    counts[path] = total
                usable = [v for v in videos if counts.get(v.files[0], 0) > 0]
                if not usable:
                    raise DataError("no readable video in the face folder", faces)
                clips = int(math.ceil(n_units / len(usable)))
                for c in range(clips):
                    for v in usable:
                        path = v.files[0]
                        windows = _clip_windows(counts[path], clips, frames)
                        units.append((safe_id(Path(path).stem), path,
                                      {"kind": "video", "path": path, "indices": windows[c]}, c))
                units = units[:max(n_units, 0)]
            else:
                usable = usable_stills(idents, n_units, seed, pool, summary, cache_path, out,
                                       faces)
                for u in usable:
                    units.append((safe_id(u[0].id), u[1],
                                  {"kind": "image", "path": u[1], "landmarks": u[2].tolist(),
                                   "colour": np.asarray(u[3], float).tolist()}, 0))
        ids = sorted({u[0] for u in units})
        first_ref = {}
        for u in units:
            first_ref.setdefault(u[0], u)
        colours = []
        for x in ids:
            ref = first_ref[x][2]
            colours.append(procedural_skin(seed, ref["index"]) if ref["kind"] == "procedural"
                           else np.asarray(ref.get("colour", (0.0, 0.0, 0.0)), float))
        split_of, donors = splits_and_donors(summary, ids, seed, holdout, faces, None, colours)
        id_index = {x: k for k, x in enumerate(ids)}
        tasks, counter = [], {}
        for k, (x, path, ref, clip) in enumerate(units):
            split = split_of[x]
            d = donors.get(id_index[x])
            method = next_method(counter, split, methods_for(split, holdout, methods),
                                 d is not None)
            if method is None:
                continue
            donor = dict(first_ref[ids[d]][2], id=ids[d]) if method == "identity_swap" else None
            tasks.append({"seed": seed, "size": size, "frames": frames, "unit": k,
                          "generator": summary.generator,
                          "clip": clip, "id": x, "path": path, "split": split,
                          "method": method, "target": ref, "donor": donor})
        run_tasks(summary, out, source, pool, tasks, CLIPS, progress)


def _clip_ids(t: dict) -> tuple[str, str]:
    return f"{t['id']}_c{t['clip']}_real", f"{t['id']}_c{t['clip']}_fake"


def _write_clips(store, out: Path, source: str, t: dict, res: dict) -> None:
    rid, fid = _clip_ids(t)
    base = {"identity": t["id"], "mask_path": "", "donor": ""}
    real = Sample(t["path"], 0, rid, t["split"], source, "real")
    for k, img in enumerate(res["real"]):
        store.add(real, k, img, base)
    store.commit()
    fake = Sample(t["path"], 1, fid, t["split"], source, t["method"])
    donor = (t["donor"] or {}).get("id", "")
    for k, (img, mask) in enumerate(zip(res["fake"], res["mask"])):
        mrel = mask_relpath(source, fid, k)
        write_png(out / mrel, mask)
        store.add(fake, k, img, dict(base, mask_path=mrel, donor=donor))
    store.commit()


#: How the video benchmark makes and stores its samples: real / fake clips.
CLIPS = Samples(make=_make_clip, ids=_clip_ids, write=_write_clips,
                failed=lambda t: f"{t['path']} (clip {t['clip']})", unit="clip",
                desc="videos", what="clip", chunksize=1)
