"""Training entry points (`python -m train.imagenet`) on one shared trainer."""
