from pathlib import Path

import pytest

from densezoo.catalog import Catalog, default_manifest_paths
from densezoo.errors import AmbiguousArtifactError, ManifestError, UnknownArtifactError
from densezoo.manifest import load_manifest, parse_manifest, url_key
from densezoo.store.trust import declared_checksum

V1_MODELS = ["ResNet50_FPN_s1x", "ResNet50_FPN_s1x-e2e", "ResNet101_FPN_s1x",
             "ResNet101_FPN_s1x-e2e", "ResNet101_FPN_32x8d_s1x", "ResNet101_FPN_32x8d_s1x-e2e",
             "DensePoseKeyPointsMask_ResNet50_FPN_s1x-e2e"]


def v1():
    return load_manifest(next(p for p in default_manifest_paths() if p.name == "densepose.yaml"))


def test_shipped_v1_manifest_lists_every_artifact():
    m = v1()
    kinds = {}
    for a in m.artifacts:
        kinds[a.kind] = kinds.get(a.kind, 0) + 1
    assert len(m.artifacts) == 29
    assert kinds == {"model": 7, "proposals": 6, "annotations": 9, "data": 2, "backbone": 3,
                     "rpn-model": 2}
    names = [a.name for a in m.artifacts]
    for model in V1_MODELS:
        assert model in names
    for a in m.artifacts:
        assert a.url.startswith("https://"), a.name
        assert "s3.amazonaws.com" not in a.url and not any("s3" in u for u in a.mirrors)


def test_shipped_v1_manifest_invents_no_checksum():
    """The public record has no md5/sha256 value for any v1 file: all must be null."""
    for a in v1().artifacts:
        assert a.md5 is None and a.sha256 is None and a.md5_prefix is None, a.name


def test_sidecars_only_where_documented():
    with_sidecar = {a.name for a in v1().artifacts if a.md5_url}
    assert with_sidecar == {"DensePoseKeyPointsMask_ResNet50_FPN_s1x-e2e", "ImageNet_R-50",
                            "ImageNet_R-101", "ImageNet_X-101-32x8d",
                            "rpn_person_only_R-50-FPN_1x", "rpn_person_only_X-101-32x8d-FPN_1x"}
    for a in v1().artifacts:
        if a.md5_url:
            assert a.md5_url == a.url + ".md5sum"


def test_same_basename_urls_get_distinct_store_keys():
    c = Catalog.load()
    a = c.get("rpn_person_only_R-50-FPN_1x")
    b = c.get("rpn_person_only_X-101-32x8d-FPN_1x")
    assert a.file_name == b.file_name == "model_final.pkl"
    assert url_key(a.url) != url_key(b.url)
    assert "%3A" in "/".join(url_key(a.url))       # the S3 key's literal %3A is not decoded


def test_lookup_is_case_insensitive_and_accepts_file_names():
    c = Catalog.load()
    assert c.get("resnet50_fpn_s1x").name == "ResNet50_FPN_s1x"
    assert c.get("DensePose_ResNet50_FPN_s1x.pkl").name == "ResNet50_FPN_s1x"
    assert c.get("densepose-v1:ResNet50_FPN_s1x-E2E").name == "ResNet50_FPN_s1x-e2e"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownArtifactError) as e:
        Catalog.load().get("ResNet50_FPN_s1")
    assert "ResNet50_FPN_s1x" in e.value.suggestions


def test_shared_file_name_is_ambiguous():
    with pytest.raises(AmbiguousArtifactError) as e:
        Catalog.load().get("model_final.pkl")
    assert len(e.value.candidates) == 2


MINIMAL = """
artifacts:
  - name: tiny
    url: https://example.org/a/tiny.bin
    md5: null
    size: 12
"""


def test_minimal_entry_is_valid():
    a = parse_manifest(MINIMAL, "m.yaml").artifacts[0]
    assert (a.name, a.kind, a.size, declared_checksum(a), a.zoo) == ("tiny", "file", 12, "none", "m")


def bad(text_entry: str) -> str:
    return "artifacts:\n" + text_entry


@pytest.mark.parametrize("text, needle", [
    (bad("  - {name: a, url: 'https://h/x', md5: null, colour: red}"), "unknown key(s) 'colour'"),
    (bad("  - {name: a, url: 'https://h/x', md5: 'xyz'}"), "is not 32 hex digits"),
    (bad("  - {name: a, url: 'https://h/x', md5: null, sha256: 'ab'}"), "is not 64 hex digits"),
    (bad("  - {name: a, url: 'https://h/x', md5: null}\n  - {name: A, url: 'https://h/y', md5: null}"),
     "duplicate name"),
    (bad("  - {name: ../etc, url: 'https://h/x', md5: null}"), "is not allowed"),
    (bad("  - {name: a/b, url: 'https://h/x', md5: null}"), "is not allowed"),
    (bad("  - {name: a, url: 'ftp://h/x', md5: null}"), "must be http(s)"),
    (bad("  - {name: a, url: 'file:///etc/passwd', md5: null}"), "must be http(s)"),
    (bad("  - {name: a, url: 'https://h/a/../../x', md5: null}"), "'..' segment"),
    (bad("  - {name: a, url: 'https://h/x'}"), "missing required key 'md5'"),
    (bad("  - {name: a, url: 'https://h/x', md5: null, size: -1}"), "size must be"),
    (bad("  - {name: a, url: 'https://h/x', md5: null, filename: ../x}"), "plain file name"),
    (bad("  - {name: a, url: 'https://h/x', md5: null, mirrors: ['gopher://m/x']}"), "http(s)"),
    (bad("  - {name: a, url: 'https://h/x.dzpart', md5: null}"), "reserves"),
    ("artifacts: [unclosed", "not valid YAML"),
    ("- just a list", "top level must be a mapping"),
    ("schema: 2\nartifacts: []", "schema 2 is not supported"),
])
def test_invalid_manifests_name_file_entry_and_problem(text, needle):
    with pytest.raises(ManifestError) as e:
        parse_manifest(text, "my.yaml")
    msg = str(e.value)
    assert msg.startswith("invalid manifest my.yaml")
    assert needle in msg
    assert e.value.exit_code == 7


def test_error_names_the_entry():
    with pytest.raises(ManifestError) as e:
        parse_manifest(bad("  - {name: good, url: 'https://h/x', md5: 'nothex'}"), "m.yaml")
    assert "entry 'good'" in str(e.value)


def test_yaml_is_loaded_safely(tmp_path):
    text = "artifacts: !!python/object/apply:os.system ['echo pwned > %s/p']" % tmp_path
    with pytest.raises(ManifestError):
        parse_manifest(text, "evil.yaml")
    assert not (tmp_path / "p").exists()


def test_later_manifests_extend_and_override(manifest):
    base = manifest({"name": "a", "url": "https://h/a", "md5": None},
                    {"name": "b", "url": "https://h/b", "md5": None})
    over = manifest({"name": "B", "url": "https://mirror/b", "md5": "0" * 32},
                    {"name": "c", "url": "https://h/c", "md5": None})
    c = Catalog.load([base, over], defaults=False)
    assert [a.name for a in c.artifacts] == ["a", "B", "c"]
    assert c.get("b").url == "https://mirror/b"


def test_requires_cycles_and_missing_names_are_manifest_errors(manifest):
    cyc = manifest({"name": "a", "url": "https://h/a", "md5": None, "requires": ["b"]},
                   {"name": "b", "url": "https://h/b", "md5": None, "requires": ["a"]})
    with pytest.raises(ManifestError, match="dependency cycle: a -> b -> a"):
        Catalog.load([cyc], defaults=False)
    missing = manifest({"name": "a", "url": "https://h/a", "md5": None, "requires": ["zz"]})
    with pytest.raises(ManifestError, match="requires 'zz'"):
        Catalog.load([missing], defaults=False)


def test_closure_puts_dependencies_first_once():
    c = Catalog.load()
    names = [a.name for a in c.closure([c.get("ResNet50_FPN_s1x"), c.get("ResNet50_FPN_s1x-e2e")])]
    assert names[-1] == "ResNet50_FPN_s1x-e2e"
    assert names.count("ImageNet_R-50") == 1
    assert names.index("ImageNet_R-50") < names.index("ResNet50_FPN_s1x")
    assert "DensePose-RPN-train_fpn_resnet50" in names


def test_every_shipped_manifest_loads():
    paths = default_manifest_paths()
    assert paths and all(isinstance(p, Path) for p in paths)
    Catalog.load()


@pytest.mark.parametrize("text,key", [
    ("artifacts:\n- name: a\n  url: https://h.example/a.bin\n  md5: " + "a" * 32 + "\n  md5: null\n",
     "md5"),
    ("artifacts:\n- name: a\n  url: https://h.example/a.bin\n  url: https://evil.example/a.bin\n"
     "  md5: null\n", "url"),
    ("artifacts: []\nartifacts:\n- name: a\n  url: https://h.example/a.bin\n  md5: null\n",
     "artifacts"),
])
def test_a_duplicate_key_is_an_invalid_manifest_naming_key_and_line(text, key, tmp_path, cli):
    """YAML keeps the last of two equal keys: `md5: <hex>` then `md5: null` would drop the
    check in silence, a second `url:` would replace the first."""
    with pytest.raises(ManifestError, match=f"key '{key}' appears twice.*line [0-9]"):
        parse_manifest(text)
    m = tmp_path / "dup.yaml"
    m.write_text(text)
    r = cli("--no-default-manifests", "--manifest", str(m), "list")
    assert r.code == 7 and f"'{key}' appears twice" in r.err and r.err.count("\n") == 1, r.err
