"""Small runnable OmniStack services, each with a README and its own tests."""
