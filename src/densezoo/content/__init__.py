"""The content wing: what bytes are, whatever their source.

``sniff`` recognises error pages and wrong file types, ``pickle_scan`` reads a
pickle the way the unpickler does without running it, ``unpack`` extracts a
tarball safely, and ``inspect`` is the single list of checks by file type that
every door into the store runs.  Nothing here knows manifests or the store.
"""
