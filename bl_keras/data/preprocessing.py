"""Per-image decoding, augmentation and normalisation (graph mode, tf ops only).

The recipe follows the torchvision transforms used by the released PyTorch
Big-Little Net training script, so that accuracies are comparable:

* training: RandomResizedCrop(size) -> ColorJitter(0.4, 0.4, 0.4)
  -> RandomHorizontalFlip -> optional RandomRotation(degrees);
* evaluation: Resize(round(size / 0.875)) -> CenterCrop(size);
* both: ToTensor + Normalize(IMAGENET_MEAN, IMAGENET_STD).

`train_preprocess` and `eval_preprocess` return float32 [S, S, 3] images with
values in [0, 255]; `normalize` turns those into the network input.  All
randomness comes from stateless ops keyed by a shape-[2] integer `seed`, so
the same (image, seed) always gives the same output, whatever thread or
worker runs it.
"""

import math

import tensorflow as tf

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's evaluation resize: 256 for a 224 crop.
EVAL_CROP_FRACTION = 0.875


def decode_image(encoded):
    """Decodes JPEG, PNG, BMP or GIF bytes to a uint8 [H, W, 3] RGB tensor.

    The format is sniffed from the bytes, not the file name, so ImageNet's PNG
    saved as ``.JPEG`` decodes.  ``channels=3`` turns grayscale into RGB and
    the JPEG decoder converts CMYK, so no image needs a special case.
    Undecodable bytes raise; the pipeline catches that per element.
    """
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def normalize(image):
    """Maps a [0, 255] image (any dtype) to ImageNet-normalised float32."""
    image = tf.cast(image, tf.float32) / 255.0
    return (image - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def eval_preprocess(image, image_size, crop_fraction=EVAL_CROP_FRACTION):
    """Resizes the shorter side to round(image_size / crop_fraction), centre crops.

    Sizes and offsets are computed exactly as torchvision's Resize(int) and
    CenterCrop do (longer side truncated, offsets rounded half to even).
    """
    resize = int(round(image_size / crop_fraction))
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short_is_width = width <= height
    new_height = tf.where(short_is_width, resize * height // width, resize)
    new_width = tf.where(short_is_width, resize, resize * width // height)
    image = _resize(image, new_height, new_width)
    top = _round_half_even((new_height - image_size) / 2)
    left = _round_half_even((new_width - image_size) / 2)
    image = image[top:top + image_size, left:left + image_size]
    image.set_shape([image_size, image_size, 3])
    return image


def train_preprocess(image, image_size, seed, *, rotation_degrees=0.0,
                     color_jitter=0.4, min_crop_area=0.08):
    """Random-resized crop, colour jitter, horizontal flip, optional rotation.

    Args:
      image: uint8 (or [0, 255] float) [H, W, 3] tensor.
      image_size: output side length S.
      seed: shape-[2] int32/int64 tensor; all randomness derives from it.
      rotation_degrees: if > 0, rotate by an angle drawn uniformly from
        [-rotation_degrees, rotation_degrees] (bilinear, black fill).
      color_jitter: brightness/contrast/saturation strength; 0 disables it.
      min_crop_area: smallest crop, as a fraction of the image area (0.08 in
        the ImageNet recipe; small synthetic images need gentler crops).

    Returns:
      float32 [S, S, 3] with values in [0, 255].
    """
    crop_seed, jitter_seed, flip_seed, rotate_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=4))
    top, left, crop_h, crop_w = _random_resized_crop_window(
        tf.shape(image)[0], tf.shape(image)[1], crop_seed,
        scale=(min_crop_area, 1.0))
    image = tf.image.crop_to_bounding_box(image, top, left, crop_h, crop_w)
    image = _resize(image, image_size, image_size)
    if color_jitter > 0:
        image = _color_jitter(image, color_jitter, jitter_seed)
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    if rotation_degrees > 0:
        image = _random_rotate(image, rotation_degrees, rotate_seed)
    image.set_shape([image_size, image_size, 3])
    return image


def _resize(image, height, width):
    # Antialiasing matches PIL, which torchvision resizes with.
    return tf.image.resize(tf.cast(image, tf.float32), tf.stack([height, width]),
                           method="bilinear", antialias=True)


def _round_half_even(x):
    return tf.cast(tf.round(x), tf.int32)


def _random_resized_crop_window(height, width, seed, scale=(0.08, 1.0),
                                ratio=(3 / 4, 4 / 3), attempts=10):
    """torchvision RandomResizedCrop.get_params, vectorised over the attempts.

    All attempts are drawn at once and the first one that fits is used; if
    none fits, the fallback is the centre crop with the aspect ratio clamped
    into `ratio`, exactly as torchvision does.
    """
    area_seed, ratio_seed, top_seed, left_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=4))
    h_f = tf.cast(height, tf.float32)
    w_f = tf.cast(width, tf.float32)
    target_area = h_f * w_f * tf.random.stateless_uniform(
        [attempts], area_seed, scale[0], scale[1])
    aspect = tf.exp(tf.random.stateless_uniform(
        [attempts], ratio_seed, math.log(ratio[0]), math.log(ratio[1])))
    crop_w = _round_half_even(tf.sqrt(target_area * aspect))
    crop_h = _round_half_even(tf.sqrt(target_area / aspect))
    fits = (crop_w > 0) & (crop_w <= width) & (crop_h > 0) & (crop_h <= height)
    first = tf.argmax(tf.cast(fits, tf.int32))  # index of the first fit

    in_ratio = w_f / h_f
    fallback_w = tf.where(in_ratio > ratio[1],
                          _round_half_even(h_f * ratio[1]), width)
    fallback_h = tf.where(in_ratio < ratio[0],
                          _round_half_even(w_f / ratio[0]), height)

    found = tf.reduce_any(fits)
    crop_h = tf.where(found, crop_h[first], fallback_h)
    crop_w = tf.where(found, crop_w[first], fallback_w)
    random_top = tf.random.stateless_uniform(
        [], top_seed, 0, height - crop_h + 1, dtype=tf.int32)
    random_left = tf.random.stateless_uniform(
        [], left_seed, 0, width - crop_w + 1, dtype=tf.int32)
    top = tf.where(found, random_top, (height - crop_h) // 2)
    left = tf.where(found, random_left, (width - crop_w) // 2)
    return top, left, crop_h, crop_w


def _color_jitter(image, strength, seed):
    """torchvision ColorJitter(b, c, s) semantics in a fixed order.

    torchvision applies the three adjustments in a random order; we always use
    brightness -> contrast -> saturation (one of its possible orders), which
    keeps the op graph static.  Each factor is uniform in
    [max(0, 1 - strength), 1 + strength] and every step clips to [0, 255].
    """
    factors = tf.random.stateless_uniform(
        [3], seed, max(0.0, 1.0 - strength), 1.0 + strength)
    brightness, contrast, saturation = tf.unstack(factors)

    def blend(a, b, factor):
        return tf.clip_by_value(factor * a + (1.0 - factor) * b, 0.0, 255.0)

    image = blend(image, 0.0, brightness)
    image = blend(image, tf.reduce_mean(tf.image.rgb_to_grayscale(image)),
                  contrast)
    return blend(image, tf.image.rgb_to_grayscale(image), saturation)


def _random_rotate(image, max_degrees, seed):
    """Rotates about the image centre by a uniform random angle.

    Uses the same projective-transform kernel Keras' RandomRotation layer
    uses, so no tensorflow-addons dependency is needed.
    """
    angle = tf.random.stateless_uniform(
        [], seed, -max_degrees, max_degrees) * (math.pi / 180.0)
    shape = tf.shape(image)
    h = tf.cast(shape[0], tf.float32) - 1.0
    w = tf.cast(shape[1], tf.float32) - 1.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Maps each output pixel (x, y) to the input pixel it samples from.
    transform = tf.stack([
        cos, -sin, (w - (cos * w - sin * h)) / 2.0,
        sin, cos, (h - (sin * w + cos * h)) / 2.0,
        0.0, 0.0])
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis],
        transforms=transform[tf.newaxis],
        output_shape=shape[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT")
    return rotated[0]
