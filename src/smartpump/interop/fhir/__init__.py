"""FHIR R4 mappers (validated with fhir.resources.R4B): pumps, metrics, administrations, orders."""
