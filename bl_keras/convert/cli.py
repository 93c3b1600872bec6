"""`python -m bl_keras.convert`: a released PyTorch checkpoint -> a `.keras` file (+ SavedModel).

    python -m bl_keras.convert --checkpoint ImageNet-bLResNet-50-a2-b4.pth.tar \
        --arch bl_resnet50 --output bl_resnet50.keras [--saved_model export/bl_resnet50]

Exit status: 0 converted; 1 the checkpoint is unreadable or does not fit the architecture (a
summary: how many tensors are missing / unexpected / mis-shaped, the first few of each, and the
architectures the checkpoint fits; `--mismatch_report PATH` writes every name); 2 bad arguments.
Outputs are written to temporary names and moved into place only when everything succeeded, so a
failed conversion leaves nothing behind.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

from bl_keras import models
from bl_keras.command_line import HelpFormatter, check_can_write
from bl_keras.convert.checkpoint import CheckpointReadError, read_state_dict
from bl_keras.convert.expected_shapes import convertible_models
from bl_keras.convert.mismatch import CheckpointMismatchError
from bl_keras.convert.official import from_official

# `<model>_a<alpha>_b<beta>`: the names of the shared manifest (e.g. bl_resnet50_a2_b4).
_SUFFIX = re.compile(r"^(?P<name>.+)_a(?P<alpha>\d+)_b(?P<beta>\d+)$")

CLI_HINT = "For the full lists, rerun with --mismatch_report PATH."


class UsageError(Exception):
    """A bad command line: exit status 2."""


def resolve_arch(arch, alpha=None, beta=None):
    """(model name, builder options) for `--arch`, `--alpha`, `--beta`."""
    valid = convertible_models()
    name, match = arch, _SUFFIX.match(arch)
    if arch not in valid and match and match["name"] in valid:
        name = match["name"]
        for flag, given, in_name in (("alpha", alpha, match["alpha"]),
                                     ("beta", beta, match["beta"])):
            if given is not None and given != int(in_name):
                raise UsageError(f"--{flag}={given} contradicts --arch {arch}")
        alpha, beta = int(match["alpha"]), int(match["beta"])
    if name not in valid:
        raise UsageError(f"unknown --arch {arch!r}; valid names: {', '.join(valid)}")
    options = {}
    if "alpha" in models.get_entry(name).options:
        options = {"alpha": 2 if alpha is None else alpha, "beta": 4 if beta is None else beta}
    elif alpha is not None or beta is not None:
        raise UsageError(f"--alpha / --beta apply to bL models only, not {name}")
    return name, options


def build_parser():
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter, 
        prog="python -m bl_keras.convert",
        description="Convert a released PyTorch bL-Net checkpoint into a Keras model.")
    parser.add_argument("--checkpoint", required=True,
                        help="PyTorch checkpoint (.pth / .pth.tar, zip or legacy format)")
    parser.add_argument("--arch", required=True,
                        help="bl_keras.models name, e.g. bl_resnet50 (or bl_resnet50_a2_b4)")
    parser.add_argument("--alpha", type=int, default=None, help="bL alpha (default 2)")
    parser.add_argument("--beta", type=int, default=None, help="bL beta (default 4)")
    parser.add_argument("--output", required=True, help="the .keras file to write")
    parser.add_argument("--saved_model", default=None,
                        help="also export a TF Serving SavedModel (bl_keras.export) to this new "
                        "or empty directory")
    parser.add_argument("--mismatch_report", default=None, metavar="PATH",
                        help="if the checkpoint does not fit --arch, write every missing, "
                        "unexpected and mis-shaped tensor to this text file")
    parser.add_argument("--logits", action="store_true",
                        help="output logits, as the PyTorch model does (default: softmax)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output file / --saved_model directory")
    return parser


def _check_outputs(args):
    if not args.output.endswith(".keras"):
        raise UsageError(f"--output must end in .keras, got {args.output!r}")
    for flag, path in (("--output", args.output), ("--saved_model", args.saved_model)):
        if path:
            try:
                check_can_write(path, args.overwrite, flag)
            except FileExistsError as error:
                raise UsageError(str(error)) from None


def _export_saved_model(model, directory):
    # The serving export of bl_keras.export: `serving_default` takes encoded images,
    # `predict_images` preprocessed arrays (see bl_keras/export/saved_model.py). Imported here:
    # only --saved_model needs it.
    from bl_keras.export import export_saved_model

    export_saved_model(model, directory)


def _default_permissions(path, mode):
    # mkstemp / mkdtemp create private (0600 / 0700) entries; give the usual umask-based ones.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def write_outputs(model, output, saved_model=None):
    """Save `model` to `output` (.keras) and optionally `saved_model`, all or nothing."""
    out_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    handle, tmp_keras = tempfile.mkstemp(prefix=".convert-", suffix=".keras", dir=out_dir)
    os.close(handle)
    _default_permissions(tmp_keras, 0o666)
    tmp_saved = None
    try:
        model.save(tmp_keras)
        if saved_model:
            parent = os.path.dirname(os.path.abspath(saved_model))
            os.makedirs(parent, exist_ok=True)
            tmp_saved = tempfile.mkdtemp(prefix=".convert-", dir=parent)
            _default_permissions(tmp_saved, 0o777)
            _export_saved_model(model, tmp_saved)
            if os.path.isdir(saved_model) and os.listdir(saved_model):  # --overwrite given
                shutil.rmtree(saved_model)
            os.replace(tmp_saved, saved_model)  # onto a missing or empty directory
            tmp_saved = None
        os.replace(tmp_keras, output)
    finally:
        if os.path.exists(tmp_keras):
            os.remove(tmp_keras)
        if tmp_saved:
            shutil.rmtree(tmp_saved, ignore_errors=True)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        name, options = resolve_arch(args.arch, args.alpha, args.beta)
        _check_outputs(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    options["classifier_activation"] = None if args.logits else "softmax"
    try:
        state_dict = read_state_dict(args.checkpoint)
        model = from_official(name, state_dict, mismatch_report=args.mismatch_report, **options)
    except CheckpointReadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except CheckpointMismatchError as err:
        print(f"error: {args.checkpoint} does not fit {args.arch}.\n"
              + err.summary(full_list_hint=CLI_HINT), file=sys.stderr)
        return 1
    write_outputs(model, args.output, args.saved_model)
    described = ", ".join(f"{k}={v}" for k, v in options.items() if k in ("alpha", "beta"))
    print(f"converted {name}{f' ({described})' if described else ''}: {len(state_dict)} tensors "
          f"from {args.checkpoint} -> {args.output}"
          + (f" and SavedModel {args.saved_model}" if args.saved_model else ""))
    return 0
