"""Hostile manifests: fuzzed YAML and field values, alias bombs, names that try to escape."""

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from densezoo.errors import ManifestError
from densezoo.manifest import OPTIONAL_KEYS, REQUIRED_KEYS, parse_manifest
from densezoo.store.layout import Layout

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=40), st.binary(max_size=10))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
keys = st.sampled_from(sorted(set(REQUIRED_KEYS) | OPTIONAL_KEYS) + ["colour", "Name", ""])
path_seg = st.sampled_from(["a", "..", ".", "%2e%2e", "b%2Fc", "x.dzpart", "~", "", "ü", "a b",
                            "..%2f", "con", "\\..\\"])
urls = st.builds(lambda scheme, host, segs: f"{scheme}://{host}/" + "/".join(segs),
                 st.sampled_from(["https", "http", "ftp", "file", "javascript", ""]),
                 st.sampled_from(["h.example", "127.0.0.1:8080", "", "[::1]", "a@b", "h:99999"]),
                 st.lists(path_seg, min_size=0, max_size=4))
names = st.one_of(st.text(max_size=12), st.sampled_from(["../x", "a/b", "..", ".hidden", "ok",
                                                         "OK", "a\x00b", "x" * 300]))


def only_manifest_errors(text: str):
    try:
        return parse_manifest(text, "fuzz.yaml")
    except ManifestError as e:
        assert e.exit_code == 7 and str(e).startswith("invalid manifest fuzz.yaml")
        return None


@FUZZ
@given(st.text(max_size=300))
def test_any_text_is_a_manifest_or_a_manifest_error(text):
    only_manifest_errors(text)


@FUZZ
@given(st.lists(st.dictionaries(keys, values, max_size=8), max_size=4))
def test_any_field_values_give_only_manifest_errors(entries):
    only_manifest_errors(yaml.safe_dump({"artifacts": entries}, allow_unicode=True))


@FUZZ
@given(st.lists(st.fixed_dictionaries({"name": names, "url": urls, "md5": st.none()},
                                      optional={"filename": names, "mirrors": st.lists(urls)}),
                min_size=1, max_size=3))
def test_nothing_accepted_can_escape_the_store(entries):
    m = only_manifest_errors(yaml.safe_dump({"artifacts": entries}, allow_unicode=True))
    if m is None:
        return
    lay = Layout(Path("/srv/cache"))
    for art in m.artifacts:
        for p, base in ((lay.file(art), "/srv/cache/files/"),
                        (lay.pin(art), "/srv/cache/pins/"),
                        (lay.meta(lay.file(art)), "/srv/cache/files/"),
                        (lay.extract_dir(art), "/srv/cache/extracted/"),
                        (lay.bad(art), "/srv/cache/bad/")):
            resolved = str(Path(p).resolve(strict=False)) if ".." in str(p) else str(p)
            assert resolved.startswith(base) and ".." not in Path(p).parts, p
            assert not any(mark in Path(p).name for mark in (".dzpart", ".dzlock")), p


def test_alias_bomb_is_refused_before_it_is_built():
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    lines.append("artifacts: *j")
    try:
        parse_manifest("\n".join(lines), "bomb.yaml")
    except ManifestError as e:
        assert "alias" in str(e)
    else:
        raise AssertionError("an alias bomb was accepted")


def test_deep_nesting_is_a_manifest_error():
    try:
        parse_manifest("artifacts: " + "[" * 20000 + "]" * 20000, "deep.yaml")
    except ManifestError:
        pass
    else:
        raise AssertionError("20000 levels of nesting were accepted")


def test_invalid_date_scalar_is_a_manifest_error():
    try:
        parse_manifest("artifacts:\n  - {name: a, url: 'https://h/x', md5: null, size: 2019-02-30}",
                       "date.yaml")
    except ManifestError as e:
        assert "cannot be read" in str(e) or "size must be" in str(e)
    else:
        raise AssertionError("accepted")
