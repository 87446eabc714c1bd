"""Clients generated from docs/openapi.yaml (make clients); see clients/generate.py."""
