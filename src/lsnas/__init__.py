"""lsnas: large-scale neural architecture search and architecture transfer."""

__version__ = "0.1.0"
