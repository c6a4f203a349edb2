"""The `zerotouch` command line."""
