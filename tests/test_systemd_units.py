"""The systemd unit, sysusers, tmpfiles and D-Bus activation files, and systemd's own checks."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from myna.api import const

SYSTEMD_DIR = Path(__file__).resolve().parents[1] / "systemd"
UNIT = SYSTEMD_DIR / "mynad.service"
SYSUSERS = SYSTEMD_DIR / "myna.sysusers"
TMPFILES = SYSTEMD_DIR / "myna.tmpfiles"
ACTIVATION = SYSTEMD_DIR / "org.myna.Speech1.service"

Unit = dict[str, dict[str, list[str]]]


def _parse_unit(path: Path) -> Unit:
    """Parse a unit into section -> key -> every value in order.

    configparser keeps only the last of repeated keys, but systemd accumulates many of them
    (SystemCallFilter=, DeviceAllow=), so the assertions need all values.
    """
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{path.name}:{number}: keep unit lines unwrapped"
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path.name}:{number}: key outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not KEY=VALUE: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return _parse_unit(UNIT)["Service"]


def test_unit_also_parses_with_configparser() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(UNIT)
    assert parser.sections() == ["Unit", "Service", "Install"]
    assert parser["Service"]["Type"] == "notify"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("ExecStart", "/usr/bin/mynad"),
        ("WatchdogSec", "20"),
        ("Restart", "on-failure"),
        ("User", "myna"),
        ("Group", "myna"),
        ("SupplementaryGroups", "audio"),
        ("DevicePolicy", "closed"),
        ("DeviceAllow", "char-alsa rw"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateNetwork", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("RestrictRealtime", "yes"),
        ("SystemCallArchitectures", "native"),
        ("SystemCallFilter", "@system-service"),
        ("RuntimeDirectory", "myna"),
        ("RuntimeDirectoryMode", "0750"),
        ("StateDirectory", "myna"),
        ("ConfigurationDirectory", "myna"),
    ],
)
def test_unit_has_setting(service: dict[str, list[str]], key: str, value: str) -> None:
    assert value in service.get(key, []), f"{key}={value} missing; have {service.get(key)}"


def test_unit_never_grants_what_alsa_does_not_need(service: dict[str, list[str]]) -> None:
    # PrivateDevices hides /dev/snd; PrivateUsers maps the audio group away; BusName is Type=dbus.
    for key in ("PrivateDevices", "PrivateUsers", "BusName", "AmbientCapabilities"):
        assert service.get(key, [""]) in ([""], ["no"]), key
    assert "CAP_" not in " ".join(service.get("CapabilityBoundingSet", []))


def test_watchdog_leaves_room_for_the_half_period_ping(service: dict[str, list[str]]) -> None:
    watchdog = int(service["WatchdogSec"][-1])
    # The app pings every WatchdogSec/2; a period under a few seconds would be noise on a Pi.
    assert watchdog >= 10


def test_unit_directories_match_the_constants(service: dict[str, list[str]]) -> None:
    expected = [
        (const.DEFAULT_SOCKET_PATH, "/run", "RuntimeDirectory"),
        (const.DEFAULT_CONFIG_PATH, "/etc", "ConfigurationDirectory"),
        (const.ETC_VOICE_DIR, "/var/lib", "StateDirectory"),
        # InstallVoice writes here and push_voice stages here: both must be inside the writable state dir.
        (const.VOICE_STORE_DIR, "/var/lib", "StateDirectory"),
        (const.INCOMING_DIR, "/var/lib", "StateDirectory"),
        (const.TRUSTED_KEYS_DIR, "/etc", "ConfigurationDirectory"),
    ]
    for path, base, key in expected:
        assert PurePosixPath(path).parent == PurePosixPath(base) / service[key][-1], key


def _table(path: Path) -> list[list[str]]:
    return [shlex.split(line) for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_sysusers_columns() -> None:
    rows = _table(SYSUSERS)
    users = [row for row in rows if row[0] == "u"]
    # Type Name ID GECOS Home Shell
    assert users == [["u", "myna", "-", "Myna text-to-speech daemon", "/var/lib/myna", "-"]]
    assert ["m", "myna", "audio"] in rows
    assert ["g", const.ADMIN_GROUP, "-"] in rows
    assert all(row[0] in {"u", "g", "m", "r"} for row in rows)


def test_tmpfiles_columns(service: dict[str, list[str]]) -> None:
    rows = _table(TMPFILES)
    for row in rows:
        # Type Path Mode User Group Age [Argument]
        assert len(row) in (6, 7), row
        assert row[0] == "d" and row[1].startswith("/"), row
        assert re.fullmatch(r"[01][0-7]{3}", row[2]), row
        assert row[3] == "myna", row
        # Everything is group myna except the drop box, where voice admins may create (not list) files.
        assert row[4] == (const.ADMIN_GROUP if row[1] == const.INCOMING_DIR else "myna"), row
    modes = {row[1]: row[2] for row in rows}
    assert modes[const.INCOMING_DIR] == "1730"
    # Same modes as the unit, so systemd and systemd-tmpfiles never flip them back and forth.
    assert modes["/run/myna"] == service["RuntimeDirectoryMode"][-1]
    assert modes["/var/lib/myna"] == service["StateDirectoryMode"][-1]
    assert str(PurePosixPath(const.DEFAULT_SOCKET_PATH).parent) in modes
    assert const.ETC_VOICE_DIR in modes


def test_dbus_activation_file() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ACTIVATION)
    entry = parser["D-BUS Service"]
    assert entry["Name"] == const.BUS_NAME
    assert entry["SystemdService"] == UNIT.name
    assert entry["User"] == "myna"


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=50, check=False)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # ExecStart must exist for verify, and mynad is not installed where the tests run.
    text = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", UNIT.read_text())
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    result = _run(["systemd-analyze", "verify", "--man=no", str(copy)])
    # verify exits 0 even for unknown keys or bad values; it names the file in each complaint.
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if copy.name in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_security_exposure(tmp_path: Path) -> None:
    copy = tmp_path / UNIT.name
    copy.write_text(re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", UNIT.read_text()))
    # Exposure is reported as 0.0-10.0 and the threshold is in tenths: keep the unit at or under 2.0.
    result = _run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(copy)])
    if "Unknown option" in result.stderr or "unrecognized option" in result.stderr:
        pytest.skip("systemd-analyze too old for --offline/--threshold (needs systemd 250)")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def _colon_table(path: Path) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines()}


def _install_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "usr/lib/sysusers.d").mkdir(parents=True)
    (root / "usr/lib/tmpfiles.d").mkdir(parents=True)
    shutil.copy(SYSUSERS, root / "usr/lib/sysusers.d/myna.conf")
    shutil.copy(TMPFILES, root / "usr/lib/tmpfiles.d/myna.conf")
    return root


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
                    reason="systemd-sysusers/systemd-tmpfiles not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="creating files owned by myna needs root")
def test_sysusers_and_tmpfiles_apply_to_an_empty_root(tmp_path: Path) -> None:
    # --root keeps both tools away from this machine's /etc/passwd and /run.
    root = _install_root(tmp_path)
    result = _run(["systemd-sysusers", f"--root={root}", "myna.conf"])
    assert result.returncode == 0, result.stderr
    passwd = _colon_table(root / "etc/passwd")
    groups = _colon_table(root / "etc/group")
    assert passwd["myna"][5] == "/var/lib/myna"
    assert "myna" in groups["audio"][3].split(",")

    result = _run(["systemd-tmpfiles", f"--root={root}", "--create", "myna.conf"])
    assert result.returncode == 0, result.stderr
    uid, gid = int(passwd["myna"][2]), int(passwd["myna"][3])
    for path, mode in [("run/myna", 0o750), ("var/lib/myna", 0o755), ("var/lib/myna/voices", 0o755)]:
        info = (root / path).stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (uid, gid, mode), path
    admin_gid = int(groups[const.ADMIN_GROUP][2])
    info = (root / const.INCOMING_DIR.lstrip("/")).stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (uid, admin_gid, 0o1730)
