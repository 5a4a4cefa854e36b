from dfdetect import experiment


def test_split_rows_keeps_identity_together_and_given_splits():
    rows = [{"identity": f"id{i // 2}", "split": "", "video_id": f"v{i}"} for i in range(400)]
    rows += [{"identity": "x", "split": "cross", "video_id": "c"}]
    splits = experiment.split_rows(rows, seed=3)
    assert len(splits["cross"]) == 1
    where = {}
    for name, members in splits.items():
        for r in members:
            where.setdefault(r["identity"], set()).add(name)
    assert all(len(s) == 1 for s in where.values())
    n = sum(len(splits[s]) for s in ("train", "val", "test"))
    assert n == 400 and 0.7 < len(splits["train"]) / n < 0.9


def test_split_rows_is_deterministic():
    rows = [{"video_id": f"v{i}", "source": "s", "split": ""} for i in range(50)]
    assert experiment.split_rows(rows, 1) == experiment.split_rows(rows, 1)


def test_weights_arg():
    assert experiment.weights_arg("none") is None
    assert experiment.weights_arg("imagenet") == "imagenet"
