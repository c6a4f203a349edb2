"""zerotouch: operations without a human on call."""
