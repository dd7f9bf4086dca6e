"""The workstation side of voice bundles: voice_keys.py, make_bundle.py and push_voice.py without a daemon."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from myna import bundles
from myna.voices import VoicePack

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"
PLACEHOLDER = REPO / "models" / "placeholder"
SPEAKER = {
    "consent": {"given_by": "Anna Example", "date": "2025-03-01", "statement": "I agree to this voice being made."},
    "provenance": {"tool": "tests", "recordings": 3, "recorded_seconds": 9.5, "notes": ""},
}


def tool(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``tools/NAME.py ARGS`` as a user would."""
    return subprocess.run([sys.executable, str(TOOLS / f"{name}.py"), *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys, an adapter, speaker metadata and a signed bundle, made once with the command lines."""
    path = tmp_path_factory.mktemp("bundle-tools")
    result = tool("voice_keys", "generate", "--out", str(path / "keys"), "--name", "vendor")
    assert result.returncode == 0, result.stderr
    np.savez(path / "anna.npz", speaker=np.random.default_rng(3).normal(size=(1, 16)).astype(np.float32))
    (path / "speaker.json").write_text(json.dumps(SPEAKER))
    result = make(path, "--key", str(path / "keys" / "vendor.key"), "--out", str(path / "anna.mynavoice"))
    assert result.returncode == 0, result.stderr
    return path


def make(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``make_bundle.py`` with the module's adapter and metadata."""
    return tool(
        "make_bundle", "--adapter", str(path / "anna.npz"), "--base", str(PLACEHOLDER), "--voice-id", "anna",
        "--name", "Anna", "--language", "en-US", "--speaker", str(path / "speaker.json"),
        "--created", "2025-03-04T05:06:07Z", *extra,
    )  # fmt: skip


def test_generate_writes_a_private_key_only_we_can_read_and_never_overwrites(workdir: Path) -> None:
    private, public = workdir / "keys" / "vendor.key", workdir / "keys" / "vendor.pub"
    assert private.stat().st_mode & 0o777 == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    key = bundles.parse_public_key_line(public.read_text())
    assert key.comment == "vendor"
    before = private.read_bytes()
    again = tool("voice_keys", "generate", "--out", str(workdir / "keys"), "--name", "vendor")
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    assert private.read_bytes() == before


def test_public_prints_the_line_devices_trust(workdir: Path) -> None:
    result = tool("voice_keys", "public", str(workdir / "keys" / "vendor.key"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (workdir / "keys" / "vendor.pub").read_text()
    assert tool("voice_keys", "public", str(workdir / "keys" / "vendor.pub")).stdout == result.stdout
    bad = tool("voice_keys", "public", str(workdir / "speaker.json"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_make_bundle_writes_a_bundle_the_device_code_verifies(workdir: Path) -> None:
    trusted = {}
    key = bundles.parse_public_key_line((workdir / "keys" / "vendor.pub").read_text())
    trusted[key.key_id] = key
    data = (workdir / "anna.mynavoice").read_bytes()
    pack = VoicePack.load(PLACEHOLDER)
    verified = bundles.verify_bundle(bundles.unpack_bundle(data), trusted, {"placeholder": pack})
    assert verified.manifest.voice_id == "anna" and verified.manifest.speaker.consent.given_by == "Anna Example"
    # Same inputs, same bytes.
    assert make(workdir, "--key", str(workdir / "keys" / "vendor.key"), "--out", str(workdir / "again.mynavoice")).returncode == 0
    assert (workdir / "again.mynavoice").read_bytes() == data


def test_make_bundle_refuses_an_adapter_that_does_not_fit_the_base(workdir: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "anna.npz", speaker=np.zeros((1, 8), np.float32))
    (tmp_path / "speaker.json").write_text(json.dumps(SPEAKER))
    result = make(tmp_path, "--key", str(workdir / "keys" / "vendor.key"), "--out", str(tmp_path / "x.mynavoice"))
    assert result.returncode == 2 and "expected float32[1, 16]" in result.stderr
    assert not (tmp_path / "x.mynavoice").exists()
    (tmp_path / "speaker.json").write_text(json.dumps({"provenance": SPEAKER["provenance"]}))
    np.savez(tmp_path / "anna.npz", speaker=np.zeros((1, 16), np.float32))
    result = make(tmp_path, "--unsigned", "--out", str(tmp_path / "x.mynavoice"))
    assert result.returncode == 2 and "consent" in result.stderr


def test_dry_run_prints_one_line_per_target(workdir: Path) -> None:
    result = tool("push_voice", str(workdir / "anna.mynavoice"), "--to", "local", "--to", "pi@car-12", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == ["local", "pi@car-12"]
    assert all("would install anna" in line for line in lines)


def test_unreachable_host_fails_with_one_line(workdir: Path) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    # Port 1 on loopback: refused at once, no network needed.
    result = tool("push_voice", str(workdir / "anna.mynavoice"), "--to", "nobody@127.0.0.1", "--ssh-option", "Port=1",
                  "--to", "-oProxyCommand=touch /tmp/pwned", timeout=60)  # fmt: skip
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].startswith("nobody@127.0.0.1: failed: ssh: connect to host 127.0.0.1 port 1")
    assert lines[1] == "-oProxyCommand=touch /tmp/pwned: failed: not 'local' or [user@]host"


def test_bad_bundles_fail_every_target_before_any_copy(workdir: Path, tmp_path: Path) -> None:
    unsigned = tmp_path / "unsigned.mynavoice"
    assert make(workdir, "--unsigned", "--out", str(unsigned)).returncode == 0
    result = tool("push_voice", str(unsigned), "--to", "local", "--to", "pi@car-12", "--ssh", "/nonexistent/ssh")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{target}: failed: bundle {unsigned}: the bundle is not signed (devices refuse unsigned bundles)" for target in ("local", "pi@car-12")
    ]
    junk = tmp_path / "junk.mynavoice"
    junk.write_bytes(b"not a zip")
    result = tool("push_voice", str(junk), "--to", "local")
    assert result.returncode == 1 and result.stdout.strip().endswith("not a voice bundle (not a zip container)")


def test_missing_ssh_program_is_a_reason_not_a_traceback(workdir: Path) -> None:
    result = tool("push_voice", str(workdir / "anna.mynavoice"), "--to", "pi@car-12", "--ssh", "/nonexistent/ssh")
    assert result.returncode == 1 and result.stdout.strip() == "pi@car-12: failed: /nonexistent/ssh: not found (install the OpenSSH client)"
    assert result.stderr == ""
