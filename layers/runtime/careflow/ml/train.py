"""Training and evaluation (scikit-learn; the tooling's dependency, never the Lambda's).

``train`` splits a model's examples (stratified, seeded), fits a logistic regression on the
columns :func:`careflow.ml.linear.encode` gives, and writes the artifact: weights, encoder,
held-out metrics beside the baseline's, calibration, and the training distribution of each
feature (the reference of the drift check). The same seed and history give the same
artifact, byte for byte, apart from ``trained_at``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from careflow.ml import drift
from careflow.ml.features import checked
from careflow.ml.linear import LinearModel, column_names, empty_artifact, encode, tokens
from careflow.ml.registry import Example, HistoryRecord, ModelDef

HELD_OUT = 0.25


def _encoder(defn: ModelDef, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    art = empty_artifact(defn.id, defn.features)
    for f in defn.features:
        values = [r[f.name] for r in rows if r.get(f.name) is not None]
        if f.kind == "number":
            nums = [float(v) for v in values] or [0.0]
            mean = sum(nums) / len(nums)
            var = sum((v - mean) ** 2 for v in nums) / len(nums)
            art["numbers"][f.name] = [round(mean, 6), round(math.sqrt(var) or 1.0, 6)]
        elif f.kind == "category":
            counts = Counter(str(v) for v in values)
            art["categories"][f.name] = sorted(
                v for v, c in counts.items() if c >= defn.min_category_count
            )
        elif f.kind == "text":
            df = Counter(t for v in values for t in set(tokens(str(v))))
            kept = sorted((t for t, c in df.items() if c >= 2), key=lambda t: (-df[t], t))[
                : defn.max_vocabulary
            ]
            n = len(rows)
            art["text"][f.name] = {
                t: round(math.log((1 + n) / (1 + df[t])) + 1.0, 6) for t in sorted(kept)
            }
    return art


def _matrix(art: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> Any:
    import numpy as np

    names = column_names(art)
    index = {n: i for i, n in enumerate(names)}
    x = np.zeros((len(rows), len(names)))
    for r, row in enumerate(rows):
        for col, v in encode(art, row).items():
            x[r, index[col]] = v
    return x


def examples_of(defn: ModelDef, history: Sequence[HistoryRecord]) -> list[Example]:
    """The model's examples, each input checked as the model would see it."""
    return [(checked(defn.features, f), label) for f, label in defn.examples(history)]


def train(
    defn: ModelDef,
    history: Sequence[HistoryRecord],
    *,
    seed: int,
    source: str,
    now: datetime,
    version: str | None = None,
) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    examples = examples_of(defn, history)
    labels = [label for _, label in examples]
    counts = Counter(labels)
    if len(examples) < 50 or len(counts) < 2:
        raise ValueError(
            f"{defn.id}: {len(examples)} example(s) of {len(counts)} class(es) in the history:"
            " too few to train (at least 50 of 2 classes)"
        )
    stratify = labels if min(counts.values()) >= 2 else None
    fit_rows, test_rows = train_test_split(
        examples, test_size=HELD_OUT, random_state=seed, stratify=stratify
    )
    art = _encoder(defn, [f for f, _ in fit_rows])
    classes = [c for c in defn.classes if c in counts]
    clf = LogisticRegression(C=defn.regularization, max_iter=5000, random_state=seed)
    clf.fit(_matrix(art, [f for f, _ in fit_rows]), [label for _, label in fit_rows])
    learned = [str(c) for c in clf.classes_]
    coef = clf.coef_.tolist()
    intercept = clf.intercept_.tolist()
    if len(learned) == 2:  # scikit-learn keeps one row for two classes: p1 = sigmoid(w.x+b)
        coef = [[0.0] * len(coef[0]), coef[0]]
        intercept = [0.0, intercept[0]]
    order = [learned.index(c) for c in classes]
    art.update(
        classes=classes,
        coef=[[round(coef[i][j], 8) for j in range(len(coef[i]))] for i in order],
        intercept=[round(intercept[i], 8) for i in order],
    )
    model = LinearModel(art)
    test = [(f, label, model.scores(f)) for f, label in test_rows]
    ours = metrics(defn, [(label, s) for _, label, s in test])
    base = metrics(defn, [(label, _full(defn, defn.baseline(f))) for f, label, _ in test])
    external = {}
    for name, rows in (defn.external() if defn.external else {}).items():
        seen = [(checked(defn.features, f), label) for f, label in rows]
        if not seen:
            continue
        ext_ours = metrics(defn, [(label, model.scores(f)) for f, label in seen])
        ext_base = metrics(defn, [(label, _full(defn, defn.baseline(f))) for f, label in seen])
        external[name] = {
            "metric": defn.metric,
            "value": ext_ours[defn.metric],
            "baseline": ext_base[defn.metric],
            "n": len(seen),
            "metrics": ext_ours,
        }
    history_hash = hashlib.sha256(
        json.dumps(history, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    art.update(
        version=version or f"1.{history_hash[:8]}",
        title=defn.title,
        trained_at=now.isoformat(),
        training={
            "source": source,
            "seed": seed,
            "instances": len(history),
            "examples": len(examples),
            "held_out": len(test_rows),
            "class_counts": dict(sorted(counts.items())),
            "history_hash": history_hash,
        },
        metric=defn.metric,
        margin=defn.margin,
        metrics=ours,
        baseline={"name": defn.baseline_name, **base},
        reference=drift.reference(defn, [f for f, _ in fit_rows]),
    )
    if external:
        art["external"] = external
    return _ordered(art)


def _full(defn: ModelDef, scores: Mapping[str, float]) -> dict[str, float]:
    return {c: float(scores.get(c, 0.0)) for c in defn.classes}


def _ordered(art: dict[str, Any]) -> dict[str, Any]:
    first = ["model_id", "title", "version", "trained_at", "metric", "margin", "metrics"]
    rest = ["baseline", "external", "training", "classes", "numbers", "flags", "categories", "text"]
    last = ["intercept", "coef", "reference"]
    keys = [*first, *rest, *last]
    return {k: art[k] for k in keys if k in art}


def metrics(defn: ModelDef, scored: Sequence[tuple[str, Mapping[str, float]]]) -> dict[str, float]:
    """Accuracy, macro F1, AUC of the risk (for a model with an ok class), MRR, and
    calibration: expected calibration error over 10 bins of the top class's probability,
    and the multi-class Brier score."""
    labels = [label for label, _ in scored]
    tops = [max(s.items(), key=lambda kv: (kv[1], kv[0]))[0] for _, s in scored]
    out: dict[str, float] = {
        "accuracy": sum(t == y for t, y in zip(tops, labels, strict=True)) / len(scored),
        "macro_f1": _macro_f1(labels, tops, defn.classes),
        "mrr": sum(1.0 / (_rank(s, y)) for y, s in scored) / len(scored),
        "ece": _ece(labels, [s for _, s in scored]),
        "brier": sum(sum((s.get(c, 0.0) - (c == y)) ** 2 for c in defn.classes) for y, s in scored)
        / len(scored),
    }
    if defn.ok_class:
        bad = [y != defn.ok_class for y in labels]
        out["auc"] = _auc(bad, [defn.risk(s) for _, s in scored])
    return {k: round(v, 4) for k, v in out.items()}


def _rank(scores: Mapping[str, float], label: str) -> int:
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return next((i + 1 for i, (c, _) in enumerate(ranked) if c == label), len(ranked) + 1)


def _macro_f1(labels: Sequence[str], preds: Sequence[str], classes: Sequence[str]) -> float:
    present = [c for c in classes if c in labels]
    f1s = []
    for c in present:
        tp = sum(p == c and y == c for p, y in zip(preds, labels, strict=True))
        fp = sum(p == c and y != c for p, y in zip(preds, labels, strict=True))
        fn = sum(p != c and y == c for p, y in zip(preds, labels, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def _ece(labels: Sequence[str], scores: Sequence[Mapping[str, float]], bins: int = 10) -> float:
    total = 0.0
    buckets: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for y, s in zip(labels, scores, strict=True):
        top, p = max(s.items(), key=lambda kv: (kv[1], kv[0]))
        buckets[min(int(p * bins), bins - 1)].append((p, top == y))
    for b in buckets:
        if b:
            conf = sum(p for p, _ in b) / len(b)
            acc = sum(ok for _, ok in b) / len(b)
            total += len(b) * abs(conf - acc)
    return total / len(labels)


def _auc(positive: Sequence[bool], score: Sequence[float]) -> float:
    """Mann-Whitney: the chance a positive scores above a negative (ties count half)."""
    pos = [s for s, p in zip(score, positive, strict=True) if p]
    neg = [s for s, p in zip(score, positive, strict=True) if not p]
    if not pos or not neg:
        return 0.5
    ranked = sorted((s, i) for i, s in enumerate(score))
    ranks = [0.0] * len(score)
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[ranked[k][1]] = (i + j) / 2 + 1
        i = j + 1
    pos_ranks = sum(r for r, p in zip(ranks, positive, strict=True) if p)
    return (pos_ranks - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def write(art: Mapping[str, Any], path: Any) -> None:
    path.write_text(json.dumps(art, indent=1, sort_keys=False) + "\n", encoding="utf-8")
