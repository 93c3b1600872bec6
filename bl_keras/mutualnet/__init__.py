"""MutualNet: width-resolution mutual learning (Yang et al., ECCV 2020).

One slimmable network (`bl_keras.slimmable`) trained so that every (width, input resolution)
pair is a usable sub-network; a budget then picks the pair, not a new training run.

- `bl_keras.mutualnet.query`: the query table (MACs, params, accuracy, latency of each
  calibrated (width, resolution)) and the best pair under a MACs budget
  (`python -m bl_keras.mutualnet.query`).
- Training lives in `train.mutualnet`.

Nothing heavy is imported here: import the submodules.
"""
