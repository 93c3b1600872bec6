"""Speech: the paper's acoustic models (Appendix B), registered as `speech.*` models."""

from bl_keras.speech.models import bl_pyr_resnet22, bl_resnet22, resnet22

__all__ = ["bl_pyr_resnet22", "bl_resnet22", "resnet22"]
