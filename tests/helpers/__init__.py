"""Helpers shared by test modules that are neither servers nor fixtures."""
