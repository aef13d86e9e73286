"""Email providers, one file each; imported only when the configured provider is first used."""
