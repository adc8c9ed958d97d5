"""Edit field values inside manifest text without disturbing anything else.

A YAML round trip through a parser loses comments and reorders keys, which
makes a "publish these pins" diff unreadable.  PyYAML's composer gives each
node's exact position in the text, so we replace just the value spans (and
insert missing keys next to ``md5``), leaving every other byte as it was.
"""

from __future__ import annotations

from typing import Any, Mapping

from .errors import ManifestError


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return str(value)        # hex digests need no quoting


def set_fields(text: str, updates: Mapping[str, Mapping[str, Any]], *, source: str) -> str:
    """Return ``text`` with ``updates[name][field] = value`` applied to the named entries."""
    import yaml

    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise ManifestError(source, f"not valid YAML: {e}") from None
    artifacts = None
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if k.value == "artifacts" and isinstance(v, yaml.SequenceNode):
                artifacts = v
    if artifacts is None:
        raise ManifestError(source, "no 'artifacts' list to edit")

    edits: list[tuple[int, int, int, str]] = []       # (start, end, order, replacement)
    for item in artifacts.value:
        if not isinstance(item, yaml.MappingNode):
            continue
        pairs = {k.value: (k, v) for k, v in item.value if isinstance(k, yaml.ScalarNode)}
        name_node = pairs.get("name", (None, None))[1]
        if name_node is None or name_node.value not in updates:
            continue
        anchor_key, anchor_val = pairs.get("md5") or item.value[-1]
        for field, value in updates[name_node.value].items():
            if value is None:
                continue
            if field in pairs:
                node = pairs[field][1]
                edits.append((node.start_mark.index, node.end_mark.index, len(edits),
                              _scalar(value)))
            elif item.flow_style:
                pos = anchor_val.end_mark.index
                edits.append((pos, pos, len(edits), f", {field}: {_scalar(value)}"))
            else:
                # Insert a new line after the anchor's line, at the anchor key's column.
                line_end = text.find("\n", anchor_val.end_mark.index)
                pos = len(text) if line_end < 0 else line_end + 1
                prefix = "" if line_end >= 0 else "\n"
                indent = " " * anchor_key.start_mark.column
                edits.append((pos, pos, len(edits), f"{prefix}{indent}{field}: {_scalar(value)}\n"))
    # Apply from the end so earlier offsets stay valid; inserts at one spot keep their order.
    for start, end, _, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def append_entries(text: str, entries: list[Mapping[str, Any]], *, source: str,
                   zoo: str = "local") -> str:
    """Return ``text`` with ``entries`` appended to its ``artifacts`` list, every other
    byte kept (an empty text becomes a new manifest).  The caller validates the result."""
    import yaml

    def block(indent: int) -> str:
        dumped = yaml.safe_dump([dict(e) for e in entries], sort_keys=False,
                                default_flow_style=False, allow_unicode=True, width=1000)
        return "".join(" " * indent + line if line.strip() else line
                       for line in dumped.splitlines(keepends=True))

    if not text.strip():
        return f"schema: 1\nzoo: {zoo}\nartifacts:\n{block(2)}"
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise ManifestError(source, f"not valid YAML: {e}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ManifestError(source, "the top level must be a mapping with an 'artifacts' list")
    node = next((v for k, v in root.value if k.value == "artifacts"), None)
    if node is None:
        sep = "" if text.endswith("\n") else "\n"
        return f"{text}{sep}artifacts:\n{block(2)}"
    if not isinstance(node, yaml.SequenceNode):
        raise ManifestError(source, "'artifacts' must be a list")
    if node.flow_style:
        if node.value:
            raise ManifestError(source, "'artifacts' is written inline ([...]); write it as a "
                                        "block list to add entries")
        start, end = node.start_mark.index, node.end_mark.index
        return text[:start].rstrip(" ") + "\n" + block(2).rstrip("\n") + text[end:]
    # The sequence ends where the next token starts: step back over trailing blank lines
    # so the new entries follow the last line of the list directly.
    last = len(text[:node.end_mark.index].rstrip())
    line_end = text.find("\n", last)
    pos = len(text) if line_end < 0 else line_end + 1
    prefix = "" if pos == 0 or text[pos - 1] == "\n" else "\n"
    return text[:pos] + prefix + block(node.start_mark.column) + text[pos:]
