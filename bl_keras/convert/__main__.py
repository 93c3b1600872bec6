"""`python -m bl_keras.convert --checkpoint PATH --arch NAME --output model.keras` (see cli.py)."""

import sys

from bl_keras.convert.cli import main

if __name__ == "__main__":
    sys.exit(main())
