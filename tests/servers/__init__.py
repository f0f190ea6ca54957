"""Fake and test servers the suite runs against on loopback."""
