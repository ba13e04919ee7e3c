"""FHIR R4 (read with ``fhir.resources.R4B``) to careflow's canonical records."""

from careflow.adapters.fhir.mappers import (
    SUPPORTED_TYPES,
    FhirMappingError,
    InvalidResource,
    UnsupportedResource,
    parse,
    to_canonical,
)

__all__ = [
    "SUPPORTED_TYPES",
    "FhirMappingError",
    "InvalidResource",
    "UnsupportedResource",
    "parse",
    "to_canonical",
]
