"""The predictor port: what a step asks a model, what it gets back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Prediction(BaseModel):
    """One model's answer for one input. Carries no input values: ``input_hash`` names the
    input, ``reasons`` name features (with the value only for categorical features, which
    are codes, never identifiers)."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    version: str
    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    scores: dict[str, float]  # every class's probability, summing to 1
    reasons: tuple[str, ...] = ()  # the top features behind the label, strongest first
    # For a risk model (one with an "ok" class): the top features behind its likeliest
    # not-ok class, so a low risk still says what raises it (the inbox's "why").
    risk_reasons: tuple[str, ...] = ()
    input_hash: str

    def ranked(self) -> list[tuple[str, float]]:
        """The classes, most likely first."""
        return sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))


class ModelUnavailable(Exception):
    """The model is not installed, or its backend refused or failed: the rules decide."""


class Predictor(Protocol):
    def predict(self, model_id: str, features: Mapping[str, Any]) -> Prediction: ...

    def version(self, model_id: str) -> str: ...
