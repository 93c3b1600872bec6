"""The slimmable channel rule lives with the layers (`bl_keras.layers.width`); this name stays
for code that imports it from here."""

from bl_keras.layers.width import (active, assert_width, channels_of, check_width,  # noqa: F401
                                   is_static, make_divisible)
