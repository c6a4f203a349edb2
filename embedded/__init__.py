"""The embedded runtime: the Temporal dev server, the state directory and `zerotouch up`."""
