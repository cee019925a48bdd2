"""`partui run --save-arrays`: the run's arrays as .npy files, and a README.txt beside them
that says what was computed and what each file holds."""

from __future__ import annotations

from partui.kernels.model.layers import GELU_FORMULA, LAYERS, NETWORK
from partui.tui.cli.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:  # loads on first use: `partui --help` does not need it
    from pathlib import Path


ARRAYS_README = "README.txt"


def save_arrays(out_dir: Path, arrays: dict, force: bool = False, readme: str = "") -> None:
    """The arrays as .npy files, and `readme` (what was computed) beside them."""
    import io

    import numpy as np

    from partui.profiles.files.safe_files import check_target, write_bytes, write_text

    try:  # every target checked before the first is written: no half-saved folder
        for name in [*(f"{n}.npy" for n in arrays), *([ARRAYS_README] if readme else [])]:
            check_target(out_dir / name, overwrite=force)
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr)
            write_bytes(out_dir / f"{name}.npy", buf.getvalue(), overwrite=force)
        if readme:
            write_text(out_dir / ARRAYS_README, readme, overwrite=force)
    except OSError as exc:
        raise UsageError(f"cannot write arrays to {out_dir}: {exc}") from None


def _array_role(name: str, pass_kind: str) -> str:
    """What one saved array is, from its file name."""
    param = name.removesuffix(".grad").removesuffix("_grad")
    owner, _, which = param.rpartition(".")
    which = which or param
    if which in ("weight", "bias") and name != param:
        return f"dL/d {param}: the {which} gradient partui computed"
    if which == "weight":
        return f"{owner + ' ' if owner else ''}weight, PyTorch layout" + (
            " (before the update)" if pass_kind == "train" else ""
        )
    if which == "bias":
        return f"{owner + ' ' if owner else ''}bias" + (
            " (before the update)" if pass_kind == "train" else ""
        )
    return {
        "input": "the input batch (seeded standard normal)"
        if pass_kind != "train"
        else "the images of the batch (seeded standard normal)",
        "output": "the output partui computed",
        "labels": "the class of each image, 0..25",
        "loss": "the mean NLL loss of the batch (a 0-d array)",
        "output_grad": "dL/d output: the seeded upstream gradient given to the backward pass",
        "input_grad": "dL/d input: the input gradient partui computed",
    }.get(name, "")


def arrays_readme(result) -> str:
    """What `--save-arrays` wrote: the layer, its formula, the pass, and each file's shape."""
    c = result.config
    layer = LAYERS[c.layer]
    lines = [
        "Written by partui run --save-arrays: the arrays of one run, to check with another",
        "library. NumPy .npy files (numpy.load).",
        "",
        f"layer    {c.layer}: {layer.operation}, per sample {layer.shape_text()}",
        f"pass     {c.pass_kind}",
        f"run      strategy {c.strategy}, kernel {c.kernel}, executor {c.executor}, "
        f"workers {c.workers}, batch {c.batch}, seed {c.seed}",
        "",
    ]
    if layer.kind == "network":
        lines.append(
            "forward  input -> " + " -> ".join(x.name for x in NETWORK) + " = output "
            "(pool3's 128x1x1 flattened to 128 for linear1)"
        )
        lines += [f"  {x.name:<10} {x.formula}" for x in NETWORK]
    else:
        lines.append(f"forward  {layer.formula}")
    if "GELU_tanh" in "\n".join(lines):
        lines.append(f"         {GELU_FORMULA}")
    if c.pass_kind == "backward":
        lines.append(
            "backward given output_grad = dL/d output (seeded), the gradients of "
            "L = sum(output * output_grad)"
        )
    elif c.pass_kind == "train":
        lines.append(
            "train    one SGD step: forward, L = mean over the batch of -output[n, labels[n]] "
            "(NLL of the log-softmax), backward; the gradients are of L"
        )
    lines += [
        f"checked  against a float64 reference: max abs error {result.max_abs_error:.2e} "
        f"(tolerance {result.tolerance:.2e}) {'OK' if result.ok else 'FAILED'}",
        "",
        "files",
    ]
    width = max(len(n) for n in result.arrays) + 4
    for name, arr in result.arrays.items():
        shape = "x".join(map(str, arr.shape)) or "scalar"
        lines.append(
            f"  {name + '.npy':<{width}} {str(arr.dtype):<8} {shape:<14} "
            f"{_array_role(name, c.pass_kind)}"
        )
    return "\n".join(lines) + "\n"
