"""Run a detectron2 script with densezoo installed: ``python -m densezoo.run SCRIPT [ARGS]``.

For ``apply_net.py`` / ``train_net.py`` as they ship: the script runs as ``__main__``
with ``sys.argv`` = ``[SCRIPT, ARGS...]``, after ``densezoo.integrations.detectron2
.install()`` -- so its ``MODEL.WEIGHTS`` and runtime files come from the verified store,
and ``DetectionCheckpointer`` loads ``.pkl`` weights with the restricted loader (nothing in
them runs) and ``.safetensors`` files.  No edit to the script, no ``sitecustomize``.
"""

from __future__ import annotations

import os
import runpy
import sys

USAGE = "usage: python -m densezoo.run SCRIPT.py [ARGS...]  (e.g. apply_net.py show ...)"


def main(argv: list[str] | None = None) -> None:
    """The program (an entry point, like the CLI: it writes its own usage errors)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        (sys.stdout if args else sys.stderr).write(USAGE + "\n")
        sys.exit(0 if args else 2)
    script = args[0]
    if not os.path.isfile(script):
        sys.stderr.write(f"error: no such script {script!r}\n{USAGE}\n")
        sys.exit(2)
    from .errors import DensezooError
    from .integrations.detectron2 import install

    try:
        install()
    except DensezooError as e:
        sys.stderr.write(f"error: {e}\n" + (f"  hint: {e.hint}\n" if e.hint else ""))
        sys.exit(e.exit_code)
    sys.argv = args
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))   # as `python SCRIPT` does
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
