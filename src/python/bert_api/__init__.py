"""bert_api: the Litestar HTTP service that serves bert_runtime models."""

__version__ = "0.1.0"
