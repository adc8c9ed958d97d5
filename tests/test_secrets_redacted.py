"""Issue 19.9: one redaction for every message -- doctor's environment, comma-separated
mirror lists, config warnings and manifest errors never print a password or token."""



SECRETS = ("password", "sekrit", "sekrit2", "hunter2", "tok3n")


def _clean(text: str) -> None:
    for s in SECRETS:
        assert s not in text, (s, text)


def test_doctor_redacts_proxies_and_mirror_lists(cli, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "user:password@proxy.local:3128")
    monkeypatch.setenv("DENSEZOO_MIRROR",
                       "https://a:sekrit@m1.local/x,https://b:sekrit2@m2.local/y")
    r = cli("doctor")
    assert "proxy.local:3128" in r.out + r.err and "m2.local" in r.out + r.err
    _clean(r.out + r.err)
    r = cli("doctor", "--json")
    _clean(r.out + r.err)


def test_manifest_errors_and_config_warnings_are_redacted(cli, manifest, tmp_path):
    bad = manifest({"name": "x", "url": "https://al:hunter2@h.local/x bin", "md5": None})
    r = cli("--manifest", str(bad), "list")
    assert r.code == 7 and "h.local/x bin" in r.err
    _clean(r.err)
    good = manifest({"name": "y", "url": "https://h.local/y.bin", "md5": None})
    cfg = tmp_path / "c.yaml"
    cfg.write_text('X: "https://bob:hunter2@example.invalid/w.pkl?token=tok3n"\n')
    r = cli("--manifest", str(good), "config", str(cfg), "--dry-run", "--json")
    assert "not in any manifest" in r.err
    _clean(r.out + r.err)
    assert r.items[0]["value"].startswith("https://example.invalid")
