"""Side-by-side benchmark: our TorchServe handler, a naive baseline handler and the raw model."""
