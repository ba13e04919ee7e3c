"""A trained model as data: the encoder and a linear (logistic) model, scored in plain Python.

The artifact is JSON (``artifacts/<id>.json``): no pickle, nothing executable, readable in a
review, and loaded in a Lambda without numpy or scikit-learn. Training
(:mod:`careflow.ml.train`) encodes its examples with :func:`encode` here, so the model is
scored on exactly the columns it learned; a test holds the scores equal to scikit-learn's.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from careflow.ml.features import Feature

_TOKEN = re.compile(r"[a-z][a-z]+")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "was",
        "were",
        "this",
        "that",
        "from",
        "are",
        "has",
        "have",
        "had",
        "not",
        "but",
        "his",
        "her",
        "she",
        "him",
        "patient",
        "pt",
        "per",
        "via",
        "all",
        "any",
        "its",
        "been",
        "into",
        "than",
        "then",
        "there",
        "their",
        "which",
        "who",
        "will",
    ]
)


def tokens(text: str) -> list[str]:
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOP]
    return words + [f"{a}_{b}" for a, b in itertools.pairwise(words)]


def encode(artifact: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, float]:
    """The sparse column vector of a checked input: numbers standardized (clipped at 5
    deviations; missing at the mean), flags 0/1, categories one-hot over the values seen in
    training, text as L2-normalised tf-idf over the training vocabulary."""
    columns: dict[str, float] = {}
    for name, (mean, scale) in artifact["numbers"].items():
        value = values.get(name)
        if value is not None:
            columns[name] = max(-5.0, min(5.0, (float(value) - mean) / scale))
    for name in artifact["flags"]:
        if values.get(name):
            columns[name] = 1.0
    for name, known in artifact["categories"].items():
        value = values.get(name)
        if value is not None and str(value) in known:
            columns[f"{name}={value}"] = 1.0
    for name, vocab in artifact["text"].items():
        counts = Counter(t for t in tokens(str(values.get(name) or "")) if t in vocab)
        weights = {t: (1.0 + math.log(c)) * vocab[t] for t, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        for t, w in weights.items():
            columns[f"{name}:{t}"] = w / norm
    return columns


def column_names(artifact: Mapping[str, Any]) -> list[str]:
    names = list(artifact["numbers"]) + list(artifact["flags"])
    for name, known in artifact["categories"].items():
        names += [f"{name}={v}" for v in known]
    for name, vocab in artifact["text"].items():
        names += [f"{name}:{t}" for t in vocab]
    return names


class LinearModel:
    """Scores an artifact: class probabilities and the features behind a class."""

    def __init__(self, artifact: Mapping[str, Any]) -> None:
        self.artifact = artifact
        self.classes: list[str] = list(artifact["classes"])
        names = column_names(artifact)
        coef = artifact["coef"]
        self._weights: dict[str, list[float]] = {
            n: [row[i] for row in coef] for i, n in enumerate(names)
        }
        self._intercept: list[float] = list(artifact["intercept"])

    def scores(self, values: Mapping[str, Any]) -> dict[str, float]:
        x = encode(self.artifact, values)
        logits = list(self._intercept)
        for col, v in x.items():
            for k, w in enumerate(self._weights.get(col, ())):
                logits[k] += w * v
        top = max(logits)
        exps = [math.exp(z - top) for z in logits]
        total = sum(exps)
        return {c: e / total for c, e in zip(self.classes, exps, strict=True)}

    def reasons(self, values: Mapping[str, Any], label: str, top: int = 3) -> tuple[str, ...]:
        """The features pushing towards ``label`` hardest (weight for the label minus the
        mean weight of the other classes, times the value), as display strings."""
        k = self.classes.index(label)
        n = len(self.classes)
        pushes: list[tuple[float, str]] = []
        for col, v in encode(self.artifact, values).items():
            row = self._weights.get(col)
            if row is None:
                continue
            others = (sum(row) - row[k]) / (n - 1) if n > 1 else 0.0
            push = (row[k] - others) * v
            if push >= 0.005:  # a push that rounds to +0.00 explains nothing
                pushes.append((push, _display(self.artifact, col, v)))
        pushes.sort(key=lambda p: -p[0])
        return tuple(f"{text} (+{push:.2f})" for push, text in pushes[:top])


def _display(artifact: Mapping[str, Any], col: str, value: float) -> str:
    if col in artifact["numbers"]:
        return f"{col} {'high' if value > 0 else 'low'}"
    if ":" in col and col.split(":", 1)[0] in artifact["text"]:
        return f"text mentions '{col.split(':', 1)[1].replace('_', ' ')}'"
    return col


def empty_artifact(model_id: str, features: Sequence[Feature]) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "numbers": {},
        "flags": [f.name for f in features if f.kind == "flag"],
        "categories": {},
        "text": {},
    }
