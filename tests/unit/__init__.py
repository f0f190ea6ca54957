"""Tests without sockets: pure functions, sans-IO decoders, policies and config files."""
