"""Testing helpers: an embedded Kubernetes API server and a pytest plugin."""
