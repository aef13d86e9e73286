"""Chat providers: one adapter per provider, each importing its SDK only when built."""
