"""The embedded image benchmark (P1, P5): for every identity and view one real crop and one
fake crop made from the same face (Self-Blended-Images style pairs: the network can only
learn the forgery, not the person), balanced by construction.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dfdetect.data.sample import Sample
from dfdetect.synthetic import forge, procedural
from dfdetect.synthetic.build import (TAG, Samples, mask_relpath, methods_for, next_method,
                                      run_tasks, sample_rng, safe_id, shape_key, source_name,
                                      splits_and_donors, worker_pool)
from dfdetect.synthetic.canvas import (WORK_SCALE, apply_affine, crop_affine, mask_png, warp,
                                       write_png)
from dfdetect.synthetic.identities import (list_folder, load_face, no_usable_face,
                                           probe_video_stills, procedural_skin, usable_stills)


def _make_pair(task: dict) -> dict:
    """Worker: one identity view -> a real crop, a fake crop and the fake's mask."""
    try:
        seed, size = task["seed"], task["size"]
        rng = sample_rng(seed, TAG["pair"], task["ident_idx"], task["view"])
        work = int(round(size * rng.uniform(*WORK_SCALE)))
        if task["target"]["kind"] == "procedural":
            view = procedural.random_view(sample_rng(seed, TAG["view"],
                                                     task["target"]["index"], task["view"]))
            task["target"]["view_obj"] = view
            if task["donor"] is not None:
                dview = procedural.random_view(sample_rng(seed, TAG["donor"],
                                                          task["ident_idx"], task["view"]))
                # same head pose as the target (swaps pick look-alike poses), own face
                task["donor"]["view_obj"] = dataclasses.replace(
                    dview, yaw=view.yaw, pitch=view.pitch, roll=view.roll, scale=view.scale,
                    dx=view.dx, dy=view.dy)
        img, lm = load_face(task["target"], seed, work)
        m = crop_affine(lm, img.shape, rng, work)
        canvas, lm_c = warp(img, m, work), apply_affine(m, lm)
        donor = None
        if task["donor"] is not None:
            dimg, dlm = load_face(task["donor"], seed, work)
            dm = crop_affine(dlm, dimg.shape, rng, work)
            donor = (warp(dimg, dm, work), apply_affine(dm, dlm))
        version = task.get("generator", forge.DEFAULT_GENERATOR)
        fake = forge.forge(task["method"], canvas, lm_c, rng, donor=donor, version=version)
        fin = forge.sample_finish_params(rng, version=version)
        # SBI may have augmented the target: the real of the pair is what it blended into
        real_img = forge.finish(canvas if fake.real is None else fake.real, size, fin)
        fin_fake = dict(fin, noise_seed=int(rng.integers(2**31 - 1)))
        fake_img = forge.finish(fake.image, size, fin_fake)
        return {"task": task, "real": real_img, "fake": fake_img,
                "mask": mask_png(fake.mask, size), "error": None}
    except Exception as err:  # noqa: BLE001
        return {"task": task, "error": f"{type(err).__name__}: {err}"}


def build_images(summary, sc, faces, out: Path, seed, holdout, workers, n_ident, n_views,
                 size, methods, cache_path, progress) -> None:
    """The image benchmark into ``out`` (:func:`dfdetect.synthetic.benchmark.build_benchmark`
    checked the arguments): ``n_ident`` identities x ``n_views`` views of ``size`` px."""
    n_ident = int(n_ident or sc.benchmark_identities)
    n_views = int(n_views or sc.views_per_identity)
    size = int(size or sc.image_size)
    source = source_name(faces)
    with worker_pool(workers) as pool:
        # ---- identities
        if faces == "procedural":
            ids = [f"p{i:05d}" for i in range(n_ident)]
            refs = {i: [{"kind": "procedural", "index": i}] for i in range(n_ident)}
            paths = [f"procedural:{x}" for x in ids]
            shapes = None
            colours = [procedural_skin(seed, i) for i in range(n_ident)]
        else:
            idents = list_folder(faces)
            stills = [i for i in idents if not i.video]
            if stills:
                usable = usable_stills(stills, n_ident, seed, pool, summary, cache_path, out,
                                       faces)
            else:  # a folder of videos: evenly spaced frames are the stills
                usable = probe_video_stills(idents, n_ident, n_views, pool, summary)
                if not usable:
                    raise no_usable_face(summary, "videos", faces)
            ids = [safe_id(u[0].id) for u in usable]
            refs = {}
            for i, u in enumerate(usable):
                if u[0].video:
                    refs[i] = [{"kind": "frame", "path": u[1], "frame": f,
                                "landmarks": lm.tolist()} for f, lm in zip(u[4], u[2])]
                else:
                    refs[i] = [{"kind": "image", "path": u[1], "landmarks": u[2].tolist()}]
            paths = [u[1] for u in usable]
            shapes = [shape_key(np.asarray(refs[i][0]["landmarks"])) for i in range(len(usable))]
            colours = [u[3] for u in usable]
        split_of, donors = splits_and_donors(summary, ids, seed, holdout, faces, shapes,
                                             colours)

        # ---- tasks: one per (identity, view); methods alternate within a split
        tasks = []
        counter: dict[str, int] = {}
        for i, x in enumerate(ids):
            split = split_of[x]
            allowed = methods_for(split, holdout, methods)
            for v in range(n_views if len(refs[i]) == 1 else len(refs[i])):
                method = next_method(counter, split, allowed, i in donors)
                if method is None:
                    continue
                donor = None
                if method == "identity_swap":
                    d = donors[i]
                    donor = dict(refs[d][v % len(refs[d])], id=ids[d])
                target = dict(refs[i][v % len(refs[i])])
                tasks.append({"seed": seed, "size": size, "ident_idx": i, "view": v,
                              "generator": summary.generator,
                              "id": x, "path": target.get("path", paths[i]), "split": split,
                              "method": method, "target": target, "donor": donor})
        run_tasks(summary, out, source, pool, tasks, PAIRS, progress)


def _pair_ids(t: dict) -> tuple[str, str]:
    return f"{t['id']}_v{t['view']}_real", f"{t['id']}_v{t['view']}_fake"


def _write_pair(store, out: Path, source: str, t: dict, res: dict) -> None:
    rid, fid = _pair_ids(t)
    base = {"identity": t["id"], "mask_path": "", "donor": ""}
    store.add(Sample(t["path"], 0, rid, t["split"], source, "real"), 0, res["real"], base)
    store.commit()
    mrel = mask_relpath(source, fid, 0)
    write_png(out / mrel, res["mask"])
    extra = dict(base, mask_path=mrel, donor=(t["donor"] or {}).get("id", ""))
    store.add(Sample(t["path"], 1, fid, t["split"], source, t["method"]), 0, res["fake"], extra)
    store.commit()


#: How the image benchmark makes and stores its samples: real / fake pairs.
PAIRS = Samples(make=_make_pair, ids=_pair_ids, write=_write_pair,
                failed=lambda t: t["path"], unit="pair", desc="images", what="sample",
                chunksize=4)
