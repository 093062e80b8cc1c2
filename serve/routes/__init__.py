"""The HTTP routes, one module per area; `serve/api.py` puts them in one FastAPI app."""
