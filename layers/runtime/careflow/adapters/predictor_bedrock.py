"""Amazon Bedrock as a model backend (off by default).

Used only for a model whose ``ai-models`` policy row names ``bedrock`` and only when the
policy's ``phi_egress`` is true (:mod:`careflow.ml.governance` checks both before any call).
The input is checked and scrubbed exactly as for the local models (declared features only,
no identifiers), sent with the Converse API, and the answer must be one of the model's
classes with a confidence, or the rules decide.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from careflow.ml import registry
from careflow.ml.features import checked, input_hash
from careflow.ml.port import ModelUnavailable, Prediction


class BedrockPredictor:
    def __init__(self, client: Any, model_id: str) -> None:
        self.client = client  # a bedrock-runtime client
        self.bedrock_model = model_id

    def version(self, model_id: str) -> str:
        return f"bedrock:{self.bedrock_model}"

    def predict(self, model_id: str, features: Mapping[str, Any]) -> Prediction:
        defn = registry.definition(model_id)
        seen = checked(defn.features, features)
        prompt = (
            f"Task: {defn.title}. Classes: {', '.join(defn.classes)}. "
            f"Input (JSON): {json.dumps(seen, sort_keys=True)}. "
            'Answer with JSON only: {"label": <one class>, "confidence": <0..1>, '
            '"reasons": [<up to 3 short phrases>]}'
        )
        try:
            reply = self.client.converse(
                modelId=self.bedrock_model,
                messages=[{"role": "user", "content": [{"text": prompt}]}],
                inferenceConfig={"maxTokens": 200, "temperature": 0},
            )
            text = reply["output"]["message"]["content"][0]["text"]
            answer = json.loads(text)
            label = str(answer["label"])
            confidence = float(answer["confidence"])
        except Exception as exc:  # any failure of the backend: the rules decide
            raise ModelUnavailable(
                f"bedrock answered nothing usable ({type(exc).__name__})"
            ) from exc
        if label not in defn.classes or not 0.0 <= confidence <= 1.0:
            raise ModelUnavailable("bedrock answered outside the model's classes")
        rest = (1.0 - confidence) / max(1, len(defn.classes) - 1)
        return Prediction(
            model_id=model_id,
            version=self.version(model_id),
            label=label,
            confidence=confidence,
            scores={c: (confidence if c == label else rest) for c in defn.classes},
            reasons=tuple(str(r)[:80] for r in answer.get("reasons", ())[:3]),
            input_hash=input_hash(seen),
        )
