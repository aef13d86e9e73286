"""The smallest OmniStack service: health endpoints and sign-in, in one file (``app.py``)."""
