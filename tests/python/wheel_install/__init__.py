"""Checks that each library wheel installs alone."""
