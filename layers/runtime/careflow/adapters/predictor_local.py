"""The local predictor: the models' JSON artifacts, scored in this process (no download,
no numpy); and the predictor the steps get, which sends a model to its backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from careflow.ml import registry
from careflow.ml.features import checked, input_hash
from careflow.ml.linear import LinearModel
from careflow.ml.port import ModelUnavailable, Prediction


class LocalPredictor:
    def __init__(self) -> None:
        self._models: dict[str, LinearModel] = {}

    def _model(self, model_id: str) -> LinearModel:
        if model_id not in self._models:
            art = registry.artifact(model_id)
            if art is None:
                raise ModelUnavailable(f"model {model_id} has no artifact: train it first")
            self._models[model_id] = LinearModel(art)
        return self._models[model_id]

    def version(self, model_id: str) -> str:
        return str(self._model(model_id).artifact["version"])

    def predict(
        self, model_id: str, features: Mapping[str, Any], *, backend: str = "local"
    ) -> Prediction:
        if backend != "local":
            raise ModelUnavailable(f"the local predictor has no backend {backend}")
        try:
            defn = registry.definition(model_id)
        except registry.UnknownModel as exc:
            raise ModelUnavailable(str(exc)) from None
        seen = checked(defn.features, features)
        model = self._model(model_id)
        scores = model.scores(seen)
        label = max(scores.items(), key=lambda kv: (kv[1], kv[0]))[0]
        risky = [kv for kv in scores.items() if kv[0] != defn.ok_class] if defn.ok_class else []
        risk_label = max(risky, key=lambda kv: (kv[1], kv[0]))[0] if risky else None
        return Prediction(
            model_id=model_id,
            version=str(model.artifact["version"]),
            label=label,
            confidence=scores[label],
            scores=scores,
            reasons=model.reasons(seen, label),
            risk_reasons=model.reasons(seen, risk_label) if risk_label else (),
            input_hash=input_hash(seen),
        )


class Predictors:
    """The ``predictor`` port: each model to the backend the policy names. Only ``local`` is
    built unless a remote backend is configured (``CAREFLOW_BEDROCK_MODEL_ID``)."""

    def __init__(self, local: LocalPredictor, remote: Mapping[str, Any] | None = None) -> None:
        self.local = local
        self.remote = dict(remote or {})

    def predict(
        self, model_id: str, features: Mapping[str, Any], *, backend: str = "local"
    ) -> Prediction:
        if backend == "local":
            return self.local.predict(model_id, features)
        adapter = self.remote.get(backend)
        if adapter is None:
            raise ModelUnavailable(f"backend {backend} is not configured in this deployment")
        result: Prediction = adapter.predict(model_id, features)
        return result
