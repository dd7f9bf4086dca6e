"""Board detection and the layered board profiles: vendor YAML, /etc overrides, includes, validation."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from myna.boards import (
    BoardFacts,
    BoardProfile,
    Detection,
    MatchRules,
    default_profile_dirs,
    detect,
    load_profiles,
    normalize_arch,
    read_facts,
    select,
    vendor_profile_dir,
)
from myna.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures" / "boards"

# A complete set of settings, for tests that write their own profiles.
SETTINGS = """
tier: small
threads: 2
alsa_device: default
period_frames: 512
periods: 4
cache_mb: 16
queue_max: 8
max_text_chars: 1000
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def vendor() -> dict[str, BoardProfile]:
    return load_profiles([vendor_profile_dir()])


# fake root tree, arch the machine reports, profile it must detect, words the reason must contain
DETECTION_CASES = [
    ("pi-zero-2-w", "aarch64", "pi-zero-2-w", "compatible has 'raspberrypi,model-zero-2-w'"),
    ("pi3", "aarch64", "pi3", "compatible has 'brcm,bcm2837'"),
    ("pi3-a-plus", "aarch64", "pi3", "compatible has 'brcm,bcm2837'"),
    ("pi4", "aarch64", "pi4", "compatible has 'brcm,bcm2711'"),
    ("pi400", "aarch64", "pi4", "compatible has 'brcm,bcm2711'"),
    ("pi4-1gb", "aarch64", "pi4-1gb", "memory 908 MB <= 1536 MB"),
    ("pi5", "aarch64", "pi5", "compatible has 'brcm,bcm2712'"),
    ("imx8mp", "aarch64", "imx8mp", "compatible has 'fsl,imx8mp'"),
    ("imx8mp-evk", "aarch64", "imx8mp-evk", "compatible has 'fsl,imx8mp-evk'"),
    # A Rockchip RK3588 board: no specific profile, so the aarch64 fallback.
    ("generic-aarch64", "aarch64", "generic-aarch64", "arch is 'aarch64'"),
    # 32-bit Raspberry Pi OS on a Pi 3 B: the Pi profiles require a 64-bit userland.
    ("generic-armv7l", "armv7l", "generic-armv7l", "arch is 'armv7l'"),
    # An Intel N100 mini PC: no device tree at all.
    ("generic-x86_64", "x86_64", "generic-x86_64", "arch is 'x86_64'"),
]


@pytest.mark.parametrize(("tree", "arch", "expected", "rule"), DETECTION_CASES)
def test_each_fake_machine_detects_its_profile(
    vendor: dict[str, BoardProfile], tree: str, arch: str, expected: str, rule: str
) -> None:
    detection = detect(vendor, read_facts(FIXTURES / tree, arch=arch))
    assert detection is not None
    assert detection.profile.name == expected
    assert not detection.explicit
    assert detection.reason.startswith(f"detected {expected}:")
    assert rule in detection.reason


def test_every_vendor_profile_has_a_fake_machine(vendor: dict[str, BoardProfile]) -> None:
    covered = {expected for tree, _, expected, _ in DETECTION_CASES if tree == expected}
    assert covered == set(vendor)
    assert all((FIXTURES / name).is_dir() for name in vendor)


def test_vendor_profiles_hold_the_intended_tiers(vendor: dict[str, BoardProfile]) -> None:
    tiers = {name: profile.tier for name, profile in vendor.items()}
    assert tiers["pi-zero-2-w"] == "tiny" and vendor["pi-zero-2-w"].threads <= 2
    assert tiers["pi4"] == "small" and tiers["pi4-1gb"] == "tiny"
    assert tiers["pi5"] == "base" and tiers["generic-x86_64"] == "base"
    assert all(not name.startswith("_") for name in vendor)
    assert all(profile.description and not profile.match.empty for profile in vendor.values())


def test_specific_boards_are_tried_before_generic_ones(vendor: dict[str, BoardProfile]) -> None:
    generic = max(p.priority for n, p in vendor.items() if n.startswith("generic-"))
    assert all(p.priority > generic for n, p in vendor.items() if not n.startswith("generic-"))


# ---------------------------------------------------------------- reading the machine


def test_read_facts_from_a_fake_pi4() -> None:
    facts = read_facts(FIXTURES / "pi4", arch="aarch64")
    assert facts.dt_model == "Raspberry Pi 4 Model B Rev 1.4"  # trailing NUL gone
    assert facts.dt_compatible == ("raspberrypi,4-model-b", "brcm,bcm2711")
    assert facts.cpuinfo["CPU part"] == "0xd08"
    assert facts.cpuinfo["Model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert facts.cpuinfo["processor"] == "0"  # per-CPU fields keep the boot CPU's value
    assert facts.arch == "aarch64"
    assert facts.memory_mb == 3880380 // 1024


def test_read_facts_falls_back_to_sys_firmware_devicetree() -> None:
    facts = read_facts(FIXTURES / "imx8mp", arch="aarch64")
    assert not (FIXTURES / "imx8mp" / "proc" / "device-tree").exists()
    assert facts.dt_model == "Toradex Verdin iMX8M Plus WB on Verdin Development Board"
    assert facts.dt_compatible[-1] == "fsl,imx8mp"


def test_read_facts_of_an_empty_root_knows_nothing(tmp_path: Path) -> None:
    facts = read_facts(tmp_path, arch="riscv64")
    assert facts == BoardFacts(arch="riscv64")


def test_read_facts_uses_platform_machine_without_an_override(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("platform.machine", lambda: "AMD64")
    assert read_facts(tmp_path).arch == "x86_64"


@pytest.mark.parametrize(
    ("machine", "bits", "arch"),
    [
        ("aarch64", 64, "aarch64"),
        ("arm64", 64, "aarch64"),
        # 64-bit kernel, 32-bit Raspberry Pi OS userland: wheels and runtime are armv7l.
        ("aarch64", 32, "armv7l"),
        ("armv8l", 32, "armv7l"),
        ("armv7l", 32, "armv7l"),
        ("x86_64", 64, "x86_64"),
    ],
)
def test_normalize_arch(machine: str, bits: int, arch: str) -> None:
    assert normalize_arch(machine, bits) == arch


# ---------------------------------------------------------------- choosing


def test_memory_rule_splits_pi4_variants(vendor: dict[str, BoardProfile]) -> None:
    pi4 = read_facts(FIXTURES / "pi4", arch="aarch64")

    def pick(memory_mb: int) -> str:
        detection = detect(vendor, dataclasses.replace(pi4, memory_mb=memory_mb))
        assert detection is not None
        return detection.profile.name

    assert pick(908) == "pi4-1gb"
    assert pick(1536) == "pi4-1gb"
    assert pick(1537) == "pi4"
    assert pick(1895) == "pi4"  # 2 GB board
    assert pick(7812) == "pi4"


def test_a_pi_on_32_bit_userland_falls_to_generic_armv7l(vendor: dict[str, BoardProfile]) -> None:
    detection = detect(vendor, read_facts(FIXTURES / "pi4", arch="armv7l"))
    assert detection is not None and detection.profile.name == "generic-armv7l"


def test_an_unknown_machine_matches_nothing(vendor: dict[str, BoardProfile], tmp_path: Path) -> None:
    facts = read_facts(tmp_path, arch="riscv64")
    assert detect(vendor, facts) is None
    with pytest.raises(ConfigError, match="no board profile matches.*riscv64.*known: generic-aarch64"):
        select(vendor, facts, None)


def test_explicit_board_beats_detection(vendor: dict[str, BoardProfile]) -> None:
    facts = read_facts(FIXTURES / "pi4", arch="aarch64")
    detection = select(vendor, facts, "pi5")
    assert detection.profile.name == "pi5"
    assert detection.explicit
    assert "chosen explicitly" in detection.reason
    assert "detection would pick pi4" in detection.reason


def test_explicit_board_works_when_detection_finds_nothing(vendor: dict[str, BoardProfile]) -> None:
    detection = select(vendor, BoardFacts(arch="riscv64"), "generic-aarch64")
    assert detection.profile.name == "generic-aarch64"
    assert "detection matches no profile" in detection.reason


def test_without_explicit_board_select_detects(vendor: dict[str, BoardProfile]) -> None:
    detection = select(vendor, read_facts(FIXTURES / "pi5", arch="aarch64"), None)
    assert detection.profile.name == "pi5" and not detection.explicit


@pytest.mark.parametrize("name", ["pi6", "_common", ""])
def test_unknown_explicit_board_lists_known_names(vendor: dict[str, BoardProfile], name: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown board profile .*known: generic-aarch64, .*pi5"):
        select(vendor, BoardFacts(arch="aarch64"), name)


def test_ties_in_priority_are_broken_by_name(tmp_path: Path) -> None:
    for name in ("zeta", "alpha"):
        write(tmp_path, name, "priority: 5\nmatch: {arch: x86_64}\n" + SETTINGS)
    detection = detect(load_profiles([tmp_path]), BoardFacts(arch="x86_64"))
    assert detection is not None and detection.profile.name == "alpha"


def test_every_match_rule_kind(tmp_path: Path) -> None:
    rules = """
    priority: 100
    match:
      model: '^ACME Head Unit'
      compatible: ['acme,hu-2', 'acme,hu-3']
      cpuinfo: {Hardware: 'i\\.MX8', CPU part: '0xd0[34]'}
      arch: aarch64
      min_memory_mb: 2000
      max_memory_mb: 5000
    """
    write(tmp_path, "acme-hu", textwrap.dedent(rules) + SETTINGS)
    profiles = load_profiles([tmp_path])
    facts = BoardFacts(
        dt_model="ACME Head Unit rev C",
        dt_compatible=("acme,hu-3", "fsl,imx8mp"),
        cpuinfo={"Hardware": "NXP i.MX8MP", "CPU part": "0xd03"},
        arch="aarch64",
        memory_mb=3900,
    )
    detection = detect(profiles, facts)
    assert detection is not None
    for phrase in (
        "device-tree model 'ACME Head Unit rev C' matches /^ACME Head Unit/",
        "device-tree compatible has 'acme,hu-3'",
        "cpuinfo Hardware 'NXP i.MX8MP' matches /i\\.MX8/",
        "cpuinfo CPU part '0xd03' matches /0xd0[34]/",
        "arch is 'aarch64'",
        "memory 3900 MB >= 2000 MB",
        "memory 3900 MB <= 5000 MB",
    ):
        assert phrase in detection.reason
    # Each rule on its own can veto the match.
    for change in (
        {"dt_model": "Other"},
        {"dt_model": None},
        {"dt_compatible": ("fsl,imx8mp",)},
        {"cpuinfo": {"Hardware": "BCM2835", "CPU part": "0xd03"}},
        {"cpuinfo": {"CPU part": "0xd03"}},
        {"arch": "x86_64"},
        {"memory_mb": 1000},
        {"memory_mb": 8000},
        {"memory_mb": None},
    ):
        assert detect(profiles, dataclasses.replace(facts, **change)) is None, change


def test_a_profile_without_match_rules_is_only_chosen_explicitly(tmp_path: Path) -> None:
    write(tmp_path, "bench", "priority: 999\n" + SETTINGS)
    profiles = load_profiles([tmp_path])
    assert profiles["bench"].match.empty
    assert detect(profiles, BoardFacts(arch="x86_64")) is None
    assert select(profiles, BoardFacts(arch="x86_64"), "bench").profile.name == "bench"


# ---------------------------------------------------------------- layering and includes


def test_etc_dir_overrides_a_key_and_adds_a_profile(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    write(etc, "pi4", "threads: 2\nmatch: {cpuinfo: {Model: 'Raspberry Pi 4'}}\n")
    write(
        etc,
        "acme-hu",
        """
        description: ACME head unit on i.MX 8M Plus
        include: imx8mp
        priority: 70
        match: {model: '^ACME'}
        alsa_device: 'plughw:CARD=acmeamp'
        """,
    )
    profiles = load_profiles([vendor_profile_dir(), etc])
    vendor = load_profiles([vendor_profile_dir()])

    pi4 = profiles["pi4"]
    assert pi4.threads == 2  # overridden
    assert pi4.tier == vendor["pi4"].tier  # untouched keys survive the deep merge
    assert pi4.match.compatible == ("brcm,bcm2711",)  # the match mapping merges too
    assert pi4.match.cpuinfo == (("Model", "Raspberry Pi 4"),)

    acme = profiles["acme-hu"]
    assert acme.alsa_device == "plughw:CARD=acmeamp"
    assert acme.tier == vendor["imx8mp"].tier
    assert acme.match.compatible == ("fsl,imx8mp",)
    facts = BoardFacts(dt_model="ACME HU", dt_compatible=("acme,hu", "fsl,imx8mp"), arch="aarch64")
    detection = detect(profiles, facts)
    assert detection is not None and detection.profile.name == "acme-hu"


def test_overriding_a_base_profile_reaches_every_profile_that_includes_it(tmp_path: Path) -> None:
    write(tmp_path, "_common", "queue_max: 3\n")
    profiles = load_profiles([vendor_profile_dir(), tmp_path])
    assert profiles["generic-aarch64"].queue_max == 3  # does not set its own
    assert profiles["pi5"].queue_max == 64  # sets its own, which still wins


def test_null_in_an_override_unsets_an_inherited_rule(tmp_path: Path) -> None:
    write(tmp_path, "pi4", "match: {arch: null}\n")
    profiles = load_profiles([vendor_profile_dir(), tmp_path])
    assert profiles["pi4"].match.arch == ()
    detection = detect(profiles, read_facts(FIXTURES / "pi4", arch="armv7l"))
    assert detection is not None and detection.profile.name == "pi4"


def test_missing_dirs_are_skipped(tmp_path: Path) -> None:
    profiles = load_profiles([vendor_profile_dir(), tmp_path / "no-such-dir"])
    assert "pi5" in profiles


def test_default_dirs_put_etc_after_vendor(tmp_path: Path) -> None:
    dirs = default_profile_dirs([tmp_path])
    assert dirs == (vendor_profile_dir(), Path("/etc/myna/board_profiles"), tmp_path)


def test_vendor_dir_is_the_checkout_board_profiles() -> None:
    assert vendor_profile_dir() == (Path(__file__).resolve().parents[1] / "board_profiles")


def test_include_three_levels(tmp_path: Path) -> None:
    write(tmp_path, "_base", SETTINGS + "description: base\nmatch: {arch: aarch64}\n")
    write(tmp_path, "_family", "include: _base\ntier: tiny\ncache_mb: 4\nmatch: {compatible: 'acme,soc'}\n")
    write(tmp_path, "board", "include: _family\ncache_mb: 8\npriority: 20\nmatch: {model: '^ACME'}\n")
    profiles = load_profiles([tmp_path])
    assert set(profiles) == {"board"}  # the _abstract levels are not returned
    board = profiles["board"]
    assert board.tier == "tiny"  # from the middle
    assert board.cache_mb == 8  # its own beats the middle
    assert board.threads == 2 and board.description == "base"  # from the bottom
    assert board.match == MatchRules(model="^ACME", compatible=("acme,soc",), arch=("aarch64",))


def test_later_include_wins_over_earlier(tmp_path: Path) -> None:
    write(tmp_path, "_a", SETTINGS)
    write(tmp_path, "_b", "threads: 7\ncache_mb: 5\n")
    write(tmp_path, "board", "include: [_a, _b]\ncache_mb: 6\n")
    board = load_profiles([tmp_path])["board"]
    assert (board.threads, board.cache_mb) == (7, 6)


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a", SETTINGS + "include: b\n")
    write(tmp_path, "b", "include: c\n")
    write(tmp_path, "c", "include: a\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: include: cycle a -> b -> c -> a"):
        load_profiles([tmp_path])


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, "a", SETTINGS + "include: a\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: include: cycle a -> a"):
        load_profiles([tmp_path])


def test_include_of_an_unknown_profile(tmp_path: Path) -> None:
    write(tmp_path, "a", SETTINGS + "include: _nowhere\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: include: unknown profile '_nowhere'"):
        load_profiles([tmp_path])


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (SETTINGS + "thraeds: 2\n", "thraeds", "unknown key"),
        (SETTINGS.replace("tier: small", "tier: huge"), "tier", "must be one of tiny, small, base"),
        (SETTINGS.replace("threads: 2", "threads: -1"), "threads", "must be from 1 to 16"),
        (SETTINGS.replace("threads: 2", "threads: 17"), "threads", "must be from 1 to 16"),
        (SETTINGS.replace("threads: 2", "threads: yes"), "threads", "must be an integer"),
        (SETTINGS.replace("threads: 2", "threads: '2'"), "threads", "must be an integer"),
        (SETTINGS.replace("periods: 4", "periods: 1"), "periods", "must be from 2"),
        (SETTINGS.replace("period_frames: 512", "period_frames: 0"), "period_frames", "must be from 64"),
        (SETTINGS.replace("cache_mb: 16", "cache_mb: -5"), "cache_mb", "must be from 0"),
        (SETTINGS.replace("queue_max: 8", "queue_max: 0"), "queue_max", "must be from 1"),
        (SETTINGS.replace("max_text_chars: 1000", "max_text_chars: 2.5"), "max_text_chars", "integer"),
        (SETTINGS.replace("alsa_device: default", "alsa_device: ''"), "alsa_device", "ALSA PCM name"),
        (SETTINGS + "priority: high\n", "priority", "must be an integer"),
        (SETTINGS + "description: [1]\n", "description", "must be a string"),
        (SETTINGS + "include: ../etc/passwd\n", "include", "not a profile name"),
        (SETTINGS + "match: {modle: x}\n", "match.modle", "unknown rule"),
        (SETTINGS + "match: {model: '('}\n", "match.model", "bad regular expression"),
        (SETTINGS + "match: {cpuinfo: {Hardware: '['}}\n", "match.cpuinfo.Hardware", "bad regular"),
        (SETTINGS + "match: {compatible: []}\n", "match.compatible", "non-empty list"),
        (SETTINGS + "match: {arch: 64}\n", "match.arch", "non-empty list"),
        (SETTINGS + "match: {min_memory_mb: -1}\n", "min_memory_mb", "must be from 0"),
        (SETTINGS + "match: [arch]\n", "match", "must be a mapping"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, "board", text)
    with pytest.raises(ConfigError) as caught:
        load_profiles([tmp_path])
    assert caught.value.message.startswith(f"{path}: {key}: ")
    assert problem in caught.value.message


def test_a_bad_value_in_an_override_file_names_that_file(tmp_path: Path) -> None:
    path = write(tmp_path, "pi5", "threads: 0\n")
    with pytest.raises(ConfigError, match=f"^{path}: threads: must be from 1 to 16"):
        load_profiles([vendor_profile_dir(), tmp_path])


def test_missing_setting_names_profile_files_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "board", SETTINGS.replace("queue_max: 8\n", ""))
    with pytest.raises(ConfigError, match=f"^{path}: queue_max: missing"):
        load_profiles([tmp_path])


def test_memory_bounds_that_cannot_match(tmp_path: Path) -> None:
    write(tmp_path, "board", SETTINGS + "match: {min_memory_mb: 2048, max_memory_mb: 1024}\n")
    with pytest.raises(ConfigError, match="board.yaml: match.min_memory_mb: is above"):
        load_profiles([tmp_path])


def test_abstract_profiles_may_be_incomplete_but_are_checked(tmp_path: Path) -> None:
    write(tmp_path, "_partial", "tier: tiny\n")
    assert load_profiles([tmp_path]) == {}
    write(tmp_path, "_partial", "tier: tinny\n")
    with pytest.raises(ConfigError, match="_partial.yaml: tier:"):
        load_profiles([tmp_path])


@pytest.mark.parametrize(
    ("text", "problem"),
    [("tier: [unclosed\n", "not valid YAML"), ("- just\n- a list\n", "a board profile must be a mapping")],
)
def test_unreadable_files(tmp_path: Path, text: str, problem: str) -> None:
    write(tmp_path, "board", text)
    with pytest.raises(ConfigError, match=f"board.yaml: {problem}"):
        load_profiles([tmp_path])


def test_a_file_name_must_be_a_profile_name(tmp_path: Path) -> None:
    write(tmp_path, "my board", SETTINGS)
    with pytest.raises(ConfigError, match="file name must be a profile name"):
        load_profiles([tmp_path])


def test_empty_override_file_changes_nothing(tmp_path: Path) -> None:
    write(tmp_path, "pi5", "")
    assert load_profiles([vendor_profile_dir(), tmp_path]) == load_profiles([vendor_profile_dir()])


# ---------------------------------------------------------------- dataclass round trips


def test_profile_round_trips_through_dict(vendor: dict[str, BoardProfile]) -> None:
    for profile in vendor.values():
        assert BoardProfile.from_dict(profile.to_dict()) == profile
    assert vendor["pi5"].buffer_frames == vendor["pi5"].period_frames * vendor["pi5"].periods


def test_profile_from_dict_rejects_yaml_only_keys(vendor: dict[str, BoardProfile]) -> None:
    raw = {**vendor["pi5"].to_dict(), "include": "_common"}
    with pytest.raises(ConfigError, match="board profile 'pi5': include: unknown key"):
        BoardProfile.from_dict(raw)


def test_facts_and_detection_round_trip(vendor: dict[str, BoardProfile]) -> None:
    facts = read_facts(FIXTURES / "imx8mp-evk", arch="aarch64")
    assert BoardFacts.from_dict(facts.to_dict()) == facts
    detection = select(vendor, facts, None)
    assert Detection.from_dict(detection.to_dict()) == detection
