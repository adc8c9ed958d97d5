"""Operations on verified files, each a module of functions that take a ``core.Core``.

export, mirror (+ its page), bundle/import, cache management, pins, doctor and
config resolution stand here, above the core and below the ``api.Zoo`` facade
that exposes them; none of them imports the facade.
"""
