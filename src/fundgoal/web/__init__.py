"""The HTTP layer: the only package importing starlette."""
