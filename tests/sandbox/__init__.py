"""The embedded sandbox API server itself."""
