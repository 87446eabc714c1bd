"""Locust load tests for the ja_ner TorchServe bundle (REST and gRPC); see docs/loadtest.md."""
