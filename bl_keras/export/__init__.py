"""Deployment: a TF Serving SavedModel (encoded images in, top-k out) and TFLite float / int8.

    python -m bl_keras.export --model model.keras --output export/1 --labels labels.txt
    python -m bl_keras.export --model model.keras --format tflite --output model.tflite \\
        --quantize int8 --representative_data calibration_images/

    from bl_keras.export import export_saved_model, export_tflite
"""

from bl_keras.export.head import class_names, outputs_logits
from bl_keras.export.images import find_images, load_images
from bl_keras.export.interpreter import TFLiteClassifier, interleaved_latencies
from bl_keras.export.saved_model import (ARRAY_SIGNATURE, INPUT_NAME, SERVING_SIGNATURE,
                                         export_saved_model)
from bl_keras.export.tflite import convert_to_tflite, export_tflite

__all__ = [
    "ARRAY_SIGNATURE", "INPUT_NAME", "SERVING_SIGNATURE", "TFLiteClassifier", "class_names",
    "convert_to_tflite", "export_saved_model", "export_tflite", "find_images",
    "interleaved_latencies", "load_images", "outputs_logits",
]
