"""The torch networks: modules and training loop, Backward Search, the student."""
