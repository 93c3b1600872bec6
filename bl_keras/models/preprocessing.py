"""`preprocess_input`, as keras.applications models have one: what the image models expect.

Every image model of the zoo takes NHWC (channels-last) RGB batches [B, H, W, 3], scaled to
[0, 1] and normalised with the ImageNet mean/std, the released PyTorch models' preprocessing
(keras.applications calls it mode "torch"). The trainer and the exported SavedModels apply the
same function (`bl_keras.data.normalize`) after decoding and resizing
(`bl_keras.data.preprocessing.eval_preprocess`).
"""

from bl_keras.data.preprocessing import normalize


def preprocess_input(images):
    """RGB images with values in [0, 255] (any dtype), [B, H, W, 3] or [H, W, 3] -> the
    normalised float32 input of the image models."""
    shape = tuple(images.shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"preprocess_input takes [B, H, W, 3] or [H, W, 3] images, got shape "
                         f"{shape}")
    if shape[-1] != 3:
        hint = (" It looks channels-first (NCHW, PyTorch's layout): transpose it with "
                "`np.transpose(images, (0, 2, 3, 1))`." if shape[-3] == 3 else "")
        raise ValueError(f"preprocess_input takes channels-last RGB images (3 channels on the "
                         f"last axis), got shape {shape}.{hint}")
    return normalize(images)
