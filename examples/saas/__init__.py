"""A small SaaS API on OmniStack: auth, billing, AI, email and jobs working together.

``main.create_service`` builds it; ``README.md`` says what it shows and how to run it.
"""
