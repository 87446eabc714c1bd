"""Hostile requests beyond the API's schema (hostile.py) and a run of them against a real server (run.py)."""
