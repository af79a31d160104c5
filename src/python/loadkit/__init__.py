"""loadkit: Locust-based smoke, functional and load testing of a bert-serve endpoint."""

__version__ = "0.1.0"
