"""One import for verified weights -- loaded without unpickling -- in detectron2's
``apply_net.py`` / ``train_net.py``::

    import densezoo.integrations.detectron2 as dz
    dz.install()          # before the config is loaded / the model is built

or, for an unmodified script, one word in front of it::

    python -m densezoo.run apply_net.py show config.yaml model_final_162be9.pkl img.jpg dp_contour

``install`` does two things:

- registers ``DensezooHandler`` on ``detectron2.utils.file_io.PathManager``, overriding
  its HTTP and ``detectron2://`` handling for the hosts the manifests name, so
  ``MODEL.WEIGHTS`` and the runtime files come from the verified store;
- makes ``DetectionCheckpointer`` read ``.pkl`` checkpoints with densezoo's restricted
  loader (``densezoo.load_weights``: numpy arrays and plain containers, nothing the file
  names is ever called) instead of ``pickle.load``, and read ``.safetensors`` files
  (``densezoo convert``).  Every other file type goes to detectron2 unchanged.
"""

from __future__ import annotations

from typing import IO, Any

from ..api import Zoo
from ..errors import DensezooError

SAFETENSORS = ".safetensors"


def install(zoo: Zoo | None = None):
    """Register the densezoo handler on detectron2's PathManager and route its checkpoint
    loading through the restricted loader; returns the handler."""
    try:
        from detectron2.utils.file_io import PathManager
    except ImportError:
        raise DensezooError("detectron2 is not installed in this environment",
                            hint="install detectron2 first, or use `densezoo config` / "
                                 "`densezoo export --layout iopath` instead") from None
    try:
        from ..iopath import DensezooHandler
    except ImportError:
        raise DensezooError("iopath is not installed",
                            hint="pip install 'densezoo[iopath]'") from None
    handler = DensezooHandler(zoo)
    PathManager.register_handler(handler, allow_override=True)
    restrict_checkpoints()
    return handler


class RestrictedPickle:
    """What ``detectron2.checkpoint.detection_checkpoint`` sees as ``pickle`` after
    ``restrict_checkpoints``: its one call, ``pickle.load(f, encoding="latin1")``, builds
    the checkpoint with the restricted loader (the same value, bit for bit, for a weight
    file; ``RestrictedLoadError`` for anything else).  detectron2's own code around the
    call -- telling its format from v1/Caffe2 files -- runs unchanged."""

    @staticmethod
    def load(f: IO[bytes], *, encoding: str = "latin1", **_: Any) -> Any:
        from ..content.weights import read_weights

        return read_weights(f).data


def restrict_checkpoints() -> None:
    """Route ``DetectionCheckpointer``'s ``.pkl`` reading through the restricted loader
    and teach it ``.safetensors``.  Idempotent; detectron2 must be importable."""
    from detectron2.checkpoint import detection_checkpoint as module

    module.pickle = RestrictedPickle        # the module's only use of pickle: _load_file
    checkpointer = module.DetectionCheckpointer
    if getattr(checkpointer._load_file, "_densezoo", False):
        return
    original = checkpointer._load_file

    def _load_file(self: Any, filename: str) -> Any:
        if filename.endswith(SAFETENSORS):
            return _safetensors_checkpoint(self.path_manager.get_local_path(filename))
        return original(self, filename)

    _load_file._densezoo = True             # type: ignore[attr-defined]
    checkpointer._load_file = _load_file


def _safetensors_checkpoint(path: str) -> dict[str, Any]:
    """A converted checkpoint as detectron2's ``.pkl`` branch returns its source: the
    model-zoo format as it is; a v1/Caffe2 file's arrays (without ``_momentum`` blobs)
    marked for detectron2's name-matching heuristics."""
    from ..content.safetensors_file import read_safetensors

    data = read_safetensors(path).data
    if "model" in data and "__author__" in data:
        return data
    arrays = data.get("blobs", data)
    return {"model": {k: v for k, v in arrays.items() if not k.endswith("_momentum")},
            "__author__": "Caffe2", "matching_heuristics": True}
