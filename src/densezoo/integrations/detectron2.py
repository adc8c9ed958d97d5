"""One import for verified weights in detectron2's ``apply_net.py`` / ``train_net.py``::

    import densezoo.integrations.detectron2 as dz
    dz.install()          # before the config is loaded / the model is built

``install`` registers ``DensezooHandler`` on ``detectron2.utils.file_io.PathManager``,
overriding its HTTP and ``detectron2://`` handling for the hosts the manifests
name, so ``MODEL.WEIGHTS`` and the runtime files come from the verified store.
"""

from __future__ import annotations

from ..api import Zoo
from ..errors import DensezooError


def install(zoo: Zoo | None = None):
    """Register the densezoo handler on detectron2's PathManager; returns the handler."""
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
    return handler
