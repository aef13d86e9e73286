"""Reference apps the benchmark runs beside a generated service: see README.md here."""
