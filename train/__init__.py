"""Training entry points (`python -m train.imagenet`, `train.speech`, `train.mutualnet`) and
their absl flags; the trainer they share is the library's (`bl_keras.training`)."""
