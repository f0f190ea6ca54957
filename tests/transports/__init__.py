"""The transport engines: TLS, kubectl proxy conformance, hostile servers."""
