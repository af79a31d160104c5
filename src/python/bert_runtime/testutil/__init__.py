"""Test helpers for bert_runtime and the packages built on it (not shipped in the wheel)."""
