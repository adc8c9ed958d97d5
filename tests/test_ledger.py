"""Issue 31 item 7: a ledger of the store, signed and checked offline with the real
model-signing package (its key-based method) and a real EC P-256 key pair.

Sign once, then: the untouched store verifies; a file whose bytes changed fails with
exit 4 naming it, as does a file gone from the store; an altered signature, another
key, or an altered ledger is exit 9.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from conftest import entry, missing


@pytest.fixture(autouse=True)
def _model_signing():
    try:
        import model_signing  # noqa: F401
    except ImportError:
        missing("model-signing (pip install 'densezoo[sign]')", "Python package")


def _key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture
def signed(cli, blob, manifest, tmp_path, cache_dir):
    """Two fetched files (one published md5, one pinned on first use), a ledger of the
    store signed with the lead's key; returns what the tests need."""
    a, b = blob("led_a", 70_000), blob("led_b", 50_000)
    m = manifest(entry(a), entry(b, md5=False, size=False))
    base = ("--manifest", str(m))
    assert cli(*base, "fetch", "led_a", "led_b").code == 0
    lead, lead_pub = _key_pair(tmp_path, "lead")
    ledger = tmp_path / "ledger.json"
    r = cli(*base, "ledger", "export", "-o", str(ledger), "--key", str(lead), "--json")
    assert r.code == 0, r.err
    return {"base": base, "a": a, "b": b, "ledger": ledger, "sig": tmp_path / "ledger.sig",
            "pub": lead_pub, "items": r.items, "root": cache_dir}


def _verify(cli, s, *extra: str, sig: Path | None = None, key: Path | None = None):
    return cli(*s["base"], "verify", "--signature", str(sig or s["sig"]),
               "--key", str(key or s["pub"]), *extra)


def _store_file(s, name: str) -> Path:
    item = next(i for i in s["items"] if i["name"] == name)
    return s["root"] / item["path"]


def test_export_lists_digests_and_vouchers_and_the_store_verifies(cli, signed):
    s = signed
    by_name = {i["name"]: i for i in s["items"]}
    assert set(by_name) == {"led_a", "led_b"}
    for blob_ in (s["a"], s["b"]):
        i = by_name[blob_.name]
        assert (i["sha256"], i["md5"], i["size"]) == (blob_.sha256, blob_.md5, len(blob_.data))
        assert i["path"].startswith("files/")
    assert [v["kind"] for v in by_name["led_a"]["vouchers"]][0] == "published"
    assert by_name["led_b"]["vouchers"][0]["kind"] == "origin"       # pinned on first use
    on_disk = json.loads(s["ledger"].read_text())
    assert [f["sha256"] for f in on_disk["files"]] == [i["sha256"] for i in s["items"]]
    bundle = json.loads(s["sig"].read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    signed_names = {r["name"] for r in statement["predicate"]["resources"]}
    assert signed_names == {"ledger.json", *(i["path"] for i in s["items"])}
    r = _verify(cli, s, "--json")
    assert r.code == 0, r.err
    assert sorted((i["name"], i["state"]) for i in r.items) == [("led_a", "ok"), ("led_b", "ok")]


def test_a_file_with_other_bytes_is_exit_4_naming_it(cli, signed):
    s = signed
    p = _store_file(s, "led_b")
    os.chmod(p, 0o644)
    data = bytearray(p.read_bytes())
    data[100] ^= 0xFF                                           # same size, other bytes
    p.write_bytes(bytes(data))
    r = _verify(cli, s)
    assert r.code == 4, r.err
    assert "led_b" in r.err and "led_a" not in r.err and s["b"].sha256 in r.err


def test_a_file_missing_from_the_store_is_exit_4_naming_it(cli, signed):
    s = signed
    _store_file(s, "led_a").unlink()
    r = _verify(cli, s, "--json")
    assert r.code == 4
    assert "led_a" in r.json["errors"][0]["message"]
    assert "in the signed ledger but not in the store" in r.json["errors"][0]["message"]


def test_an_altered_signature_is_exit_9(cli, signed, tmp_path):
    s = signed
    bundle = json.loads(s["sig"].read_text())
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[12] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    bad = tmp_path / "altered.sig"
    bad.write_text(json.dumps(bundle))
    r = _verify(cli, s, "--ledger", str(s["ledger"]), sig=bad)
    assert r.code == 9, r.err
    assert "bad signature" in r.err


def test_another_key_is_exit_9(cli, signed, tmp_path):
    _, other_pub = _key_pair(tmp_path, "someone_else")
    r = _verify(cli, signed, key=other_pub)
    assert r.code == 9 and "bad signature" in r.err, r.err


def test_an_altered_ledger_is_exit_9(cli, signed):
    """The ledger's vouchers, md5 and sizes are signed too: a ledger edited to claim a
    stronger voucher no longer matches its signature."""
    s = signed
    doc = json.loads(s["ledger"].read_text())
    doc["files"][0]["vouchers"] = [{"kind": "published", "source": "forged"}]
    s["ledger"].write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    r = _verify(cli, s)
    assert r.code == 9 and "not the ledger that was signed" in r.err, r.err


def test_export_of_a_name_not_cached_is_exit_6(cli, blob, manifest, tmp_path):
    a = blob("led_nc", 1000)
    m = manifest(entry(a))
    r = cli("--manifest", str(m), "ledger", "export", "led_nc", "-o", str(tmp_path / "l.json"))
    assert r.code == 6 and "led_nc" in r.err
    assert not (tmp_path / "l.json").exists()


def test_python_api_signs_and_checks(signed, tmp_path):
    import densezoo
    from densezoo.errors import ChecksumMismatchError

    s = signed
    m = s["base"][1]
    key, pub = _key_pair(tmp_path, "api")
    out = densezoo.ledger_export(["led_a"], output=tmp_path / "one.json", key=key,
                                 manifests=[m])
    assert [f.name for f in out.files] == ["led_a"] and out.signature.is_file()
    check = densezoo.verify(signature=out.signature, key=pub, manifests=[m])
    assert [f.sha256 for f in check.files] == [hashlib.sha256(s["a"].data).hexdigest()]
    p = _store_file(s, "led_a")
    os.chmod(p, 0o644)
    p.write_bytes(b"x" * len(s["a"].data))
    with pytest.raises(ChecksumMismatchError, match="led_a"):
        densezoo.verify(signature=out.signature, key=pub, manifests=[m])


def test_export_hashes_once_and_never_lists_corrupt_bytes(cli, blob, manifest, tmp_path):
    """The store records only the published md5 at fetch; export computes the sha256 in
    the same pass as the md5 check and records it (the next export reads it); a file
    changed since it was verified is refused (exit 4), never signed."""
    a = blob("led_once", 40_000)
    m = manifest(entry(a))
    assert cli("--manifest", str(m), "fetch", "led_once").code == 0
    path = Path(cli("--manifest", str(m), "path", "led_once").out.strip())
    meta = path.with_name(path.name + ".dzmeta")
    assert json.loads(meta.read_text())["sha256"] is None          # not known yet
    r = cli("--manifest", str(m), "ledger", "export", "-o", str(tmp_path / "l.json"), "--json")
    assert r.code == 0 and r.items[0]["sha256"] == a.sha256
    assert json.loads(meta.read_text())["sha256"] == a.sha256      # recorded for next time
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[7] ^= 0x01
    path.write_bytes(bytes(data))
    r = cli("--manifest", str(m), "ledger", "export", "-o", str(tmp_path / "l2.json"))
    assert r.code == 4 and "led_once" in r.err and a.md5 in r.err, r.err
    assert not (tmp_path / "l2.json").exists()
