"""`tfds build` without TensorFlow.

The stock ``tfds`` script of tensorflow-datasets 4.9.10 imports TensorFlow at start-up only
because of its ``convert_format`` sub-command; building array_record datasets does not need it.
This entry point runs the very same ``build`` command (TFDS's own arguments and code)::

    python -m tryon_datasets.tfds_cli build datasets/viton --config=acgpn \\
        --manual_dir=PATH --data_dir=DATA

(with TensorFlow installed, ``tfds build ...`` with the same arguments does the same). The file
format defaults to array_record here (TFDS's tfrecord default needs TensorFlow).
"""
import dataclasses
import sys

import simple_parsing
from absl import app
from tensorflow_datasets.scripts.cli import build, cli_utils


@dataclasses.dataclass(frozen=True, kw_only=True)
class Args(cli_utils.Args):
    """tfds build, TensorFlow-free."""

    command: build.Args = simple_parsing.subparsers({"build": build.Args})

    def execute(self) -> None:
        self.command.execute()


def main() -> None:
    if not any(a.startswith("--file_format") for a in sys.argv):
        sys.argv.append("--file_format=array_record")  # TFDS's default, tfrecord, needs TensorFlow
    app.run(lambda args: args.execute(), flags_parser=cli_utils.make_flags_parser(Args, description=__doc__))


if __name__ == "__main__":
    main()
