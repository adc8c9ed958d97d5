"""The content wing: what bytes are, whatever their source.

``sniff`` recognises error pages and wrong file types, ``pickle_scan`` reads a
pickle the way the unpickler does without running it, ``pickle_values`` interprets
that same reading into allow-listed values (``tensors.inventory`` describes a
checkpoint's tensors with it, numpy-free), ``unpack`` extracts a
tarball safely, and ``inspect`` is the single list of checks by file type that
every door into the store runs.  Nothing here knows manifests or the store.
"""
