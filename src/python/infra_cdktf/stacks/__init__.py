"""The app's three stacks: cluster, platform (add-ons) and inference (the service)."""
