"""The HTTP service behind ``semstyle serve``: ``app`` (FastAPI routes), ``limits`` (upload size)."""
