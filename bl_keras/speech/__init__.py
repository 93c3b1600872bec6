"""Speech: the paper's acoustic models (Appendix B), features and data pipelines.

The models are registered as `speech.*` in `bl_keras.models`; `python -m bl_keras.speech.demo`
makes the demo corpus and `python -m bl_keras.speech.posteriors` exports log-posteriors.
"""

# Importing the features registers LogMel/Deltas/UtteranceCMVN/ContextPad for .keras loading.
from bl_keras.speech import features
from bl_keras.speech.data import SpeechDatasetInfo, build_speech_dataset, speech_data_stats
from bl_keras.speech.features import ContextPad, Deltas, LogMel, UtteranceCMVN
from bl_keras.speech.models import bl_pyr_resnet22, bl_resnet22, resnet22

__all__ = [
    "ContextPad", "Deltas", "LogMel", "SpeechDatasetInfo", "UtteranceCMVN", "bl_pyr_resnet22",
    "bl_resnet22", "build_speech_dataset", "features", "resnet22", "speech_data_stats",
]
