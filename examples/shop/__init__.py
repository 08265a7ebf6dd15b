"""A tiny shop: the code under test of pytest-feedback's example suite."""
