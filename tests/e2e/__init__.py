"""The command line, the demo, the examples, the deploy manifests and the public contract."""
