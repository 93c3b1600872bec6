"""Where a bL-ResNet merges its branches: the `num_merges` (m) option of paper Table 8.

The released bL-ResNet merges four times (m = 4): in the stem and at the end of each of its three
bL-modules, i.e. "before the feature dimension changes" (Appendix A.4).

- m < 4: the first 4 - m of those merges are left out. Between merges the two branches run on
  side by side (a module that does not merge hands [big, little] to the next one, and the stride
  its fusion block would have had moves to the first blocks of both branches of that next
  module). The last merge, before the plain stage 4, always stays. bL-ResNet-50 m=2 merges at the
  end of stages 2 and 3, m=1 at the end of stage 3 only.
- m > 4: each extra merge splits the stage whose modules are longest (ties: the later stage) into
  one more module; a stage of depth L in k modules gets depths as equal as possible (longer ones
  first). Only the stage's last module has the stage's stride. bL-ResNet-101 (4, 8, 18), m=7:
  1, 2 and 3 modules of 4 | 4, 4 | 6, 6, 6 blocks.
"""

import dataclasses

DEFAULT_MERGES = 4


@dataclasses.dataclass(frozen=True)
class ModuleSpec:
    stage: int  # 0, 1 or 2: the stage (of the three bL stages) the module belongs to
    num_blocks: int
    strides: int  # the fusion block's stride
    merges: bool
    name: str


def stem_merges(num_merges):
    return num_merges >= DEFAULT_MERGES


def _modules_per_stage(depths, extra):
    counts = [1] * len(depths)
    for _ in range(extra):
        # Longest modules first; a module needs >= 2 blocks (a big branch and the fusion).
        candidates = [i for i, (d, k) in enumerate(zip(depths, counts)) if d // (k + 1) >= 2]
        if not candidates:
            raise ValueError(f"stages of depths {tuple(depths)} cannot be split into "
                             f"{len(depths) + extra} modules of at least 2 blocks")
        longest = max(candidates, key=lambda i: (-(-depths[i] // counts[i]), i))
        counts[longest] += 1
    return counts


def module_plan(depths, strides, num_merges=DEFAULT_MERGES):
    """The bL-modules of the three bL stages of `depths` (blocks) and `strides` (fusion strides)."""
    num_merges = int(num_merges)
    if num_merges < 1:
        raise ValueError(f"num_merges must be >= 1 (the merge before stage 4), got {num_merges}")
    skipped = max(0, DEFAULT_MERGES - num_merges)  # counted from the stem's merge on
    counts = _modules_per_stage(depths, max(0, num_merges - DEFAULT_MERGES))
    plan = []
    for stage, (depth, count, stride) in enumerate(zip(depths, counts, strides)):
        sizes = [depth // count + (1 if j < depth % count else 0) for j in range(count)]
        for j, size in enumerate(sizes):
            plan.append(ModuleSpec(
                stage=stage,
                num_blocks=size,
                strides=stride if j == count - 1 else 1,
                merges=stage + 1 >= skipped,
                name=f"layer{stage + 1}" if count == 1 else f"layer{stage + 1}_{j + 1}",
            ))
    return plan
