"""``make bench``'s triage-model lines: the JSON scorer beside scikit-learn.

For each trained model, single predictions (as a step makes them: check the input, encode,
score, explain) per second through :class:`careflow.adapters.predictor_local.LocalPredictor`,
beside scikit-learn's ``LogisticRegression.predict_proba`` on the same weights and the same
encoding, one row at a time (the baseline: what a Lambda shipping scikit-learn would run);
and the cold cost of each: loading the artifact vs importing scikit-learn.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from careflow.ml import registry
from careflow.ml.history import generated

SAMPLES = 300


def _sklearn_model(art: dict[str, Any]) -> Any:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression()
    coef, intercept = np.array(art["coef"]), np.array(art["intercept"])
    if len(art["classes"]) == 2:  # scikit-learn's binary form: one row, p1 = sigmoid(w.x + b)
        coef, intercept = coef[1:] - coef[:1], intercept[1:] - intercept[:1]
    clf.classes_ = np.array(art["classes"])
    clf.coef_, clf.intercept_ = coef, intercept
    return clf


def _cold_ms(code: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        out = subprocess.run(  # noqa: S603 - our own interpreter, our own code
            [
                sys.executable,
                "-c",
                f"import time; t=time.perf_counter(); {code}; print((time.perf_counter()-t)*1000)",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


def lines(samples: int = SAMPLES) -> list[str]:
    from careflow.adapters.predictor_local import LocalPredictor
    from careflow.ml.train import _matrix, examples_of

    local = LocalPredictor()
    out = []
    for defn in registry.definitions().values():
        art = registry.artifact(defn.id)
        if art is None:
            continue
        rows = [f for f, _ in examples_of(defn, generated(7, [defn]))][:samples]
        local.predict(defn.id, rows[0])  # load once
        t = time.perf_counter()
        for row in rows:
            local.predict(defn.id, row)
        ours = len(rows) / (time.perf_counter() - t)
        clf = _sklearn_model(art)
        t = time.perf_counter()
        for row in rows:
            clf.predict_proba(_matrix(art, [row]))
        theirs = len(rows) / (time.perf_counter() - t)
        out.append(
            f"models model={defn.id} local_pred_per_s={ours:.0f} "
            f"sklearn_pred_per_s={theirs:.0f} ratio={ours / theirs:.1f} n={len(rows)}"
        )
    load = _cold_ms(
        "from careflow.ml import registry; [registry.artifact(m) for m in registry.definitions()]"
    )
    sk = _cold_ms("import sklearn.linear_model")
    out.append(f"models cold_load_ms={load:.0f} sklearn_import_ms={sk:.0f} ratio={sk / load:.1f}")
    return out


if __name__ == "__main__":
    for line in lines():
        print(line)
