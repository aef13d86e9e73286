"""Notes: an existing FastAPI app that adopts OmniStack's auth and billing with ``install()``."""
