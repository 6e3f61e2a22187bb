"""Reference data assets: the ticker reference and the security identity built from it."""
