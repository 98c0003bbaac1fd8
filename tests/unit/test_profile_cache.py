"""The card-profile cache (docs/architecture.md §10): a bundled profile's parsed TOML kept with
marshal, so a process reads it without tomllib; trusted only while every file it was made from
is unchanged, and never a cause of an error of its own. Also the profile value classes."""

from __future__ import annotations

import marshal
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mynakit import profiles
from mynakit.errors import DataError, UsageError
from mynakit.profiles import (
    DEFAULT_PROFILE,
    ApplicationProfile,
    CardProfile,
    FileProfile,
    KeyProfile,
    load_profile,
    profile_cache_directory,
    with_choices,
)

pytestmark = pytest.mark.unit

SMARTPHONE = "smartphone-jpki-token"
#: load_profile without the process-wide functools cache: each call reads the cache file or the
#: TOML, as a new process would.
load_uncached: Callable[[str], CardProfile] = profiles._load_profile.__wrapped__


@pytest.fixture(autouse=True)
def cache_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path / "cache"
    monkeypatch.setenv("MYNAKIT_CACHE_DIR", str(base))
    return base


def cache_file(name: str = DEFAULT_PROFILE) -> Path:
    path = profiles._profile_cache_file(name)
    assert path is not None
    return Path(path)


def stored(name: str = DEFAULT_PROFILE) -> Any:
    return marshal.loads(cache_file(name).read_bytes())


def fresh_parse(name: str) -> CardProfile:
    return profiles._build(profiles._read_with_base(name, []))


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names ``_read_with_base`` is called with from now on (the TOML path)."""
    calls: list[str] = []
    real = profiles._read_with_base

    def counting(name_or_path: str, sources: list[tuple[str, int, int]]) -> dict[str, Any]:
        calls.append(name_or_path)
        return real(name_or_path, sources)

    monkeypatch.setattr(profiles, "_read_with_base", counting)
    return calls


def module_and_toml(*names: str) -> list[str]:
    tomls = [os.path.join(profiles.BUNDLED_PROFILES, f"{name}.toml") for name in names]
    return [os.path.abspath(path) for path in (profiles.__file__, *tomls)]


def test_the_cache_is_per_profile_interpreter_and_format(cache_base: Path) -> None:
    interpreter, version = sys.implementation.cache_tag, profiles.PROFILE_CACHE_FORMAT
    name = f"{DEFAULT_PROFILE}.{interpreter}.v{version}.marshal"
    assert cache_file() == cache_base / "card_profiles" / name


def test_the_first_load_writes_the_cache_the_second_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not cache_file().exists()
    first = load_uncached(DEFAULT_PROFILE)
    assert first == fresh_parse(DEFAULT_PROFILE)
    format_version, profile_path, sources, _ = stored()
    assert format_version == profiles.PROFILE_CACHE_FORMAT
    assert profile_path == module_and_toml(DEFAULT_PROFILE)[1]
    assert [path for path, _, _ in sources] == module_and_toml(DEFAULT_PROFILE)
    for path, size, modified in sources:
        assert (size, modified) == (os.stat(path).st_size, os.stat(path).st_mtime_ns)

    parses = count_parses(monkeypatch)
    assert load_uncached(DEFAULT_PROFILE) == first
    assert parses == []


def test_the_smartphone_profile_records_its_base_too(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = load_uncached(SMARTPHONE)
    assert profile == fresh_parse(SMARTPHONE)
    _, _, sources, _ = stored(SMARTPHONE)
    assert [path for path, _, _ in sources] == module_and_toml(SMARTPHONE, DEFAULT_PROFILE)
    parses = count_parses(monkeypatch)
    assert load_uncached(SMARTPHONE) == profile
    assert parses == []


def test_the_default_name_given_or_not_is_one_load() -> None:
    assert load_profile() is load_profile(DEFAULT_PROFILE)
    assert load_profile() is load_profile(name_or_path=DEFAULT_PROFILE)


PROBE = (
    "import sys\n"
    "from mynakit.profiles import load_profile\n"
    "load_profile()\n"
    "load_profile('mynumber-card')\n"
    "print('tomllib' in sys.modules)\n"
)


def run_probe(cache_base: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MYNAKIT_CACHE_DIR": str(cache_base)},
    )
    return result.stdout.strip()


def test_a_new_process_with_a_warm_cache_imports_no_tomllib(cache_base: Path) -> None:
    assert run_probe(cache_base) == "True"  # cold: parsed, and the cache written
    assert run_probe(cache_base) == "False"


def test_processes_writing_at_once_leave_one_whole_cache_file(cache_base: Path) -> None:
    environment = {**os.environ, "MYNAKIT_CACHE_DIR": str(cache_base)}
    running = [
        subprocess.Popen([sys.executable, "-c", PROBE], env=environment, stdout=subprocess.PIPE)
        for _ in range(4)
    ]
    for process in running:
        process.communicate()
        assert process.returncode == 0
    assert sorted(path.name for path in cache_file().parent.iterdir()) == [cache_file().name]
    assert profiles._read_profile_cache(str(cache_file()), module_and_toml(DEFAULT_PROFILE)[1])


def rewrite_cache(change: Callable[[list[Any]], None]) -> None:
    """Apply ``change`` to the stored (format, profile path, sources, document) and write it
    back in place."""
    content = list(stored())
    change(content)
    cache_file().write_bytes(marshal.dumps(tuple(content)))


def source_changed(index: int, field: int) -> Callable[[list[Any]], None]:
    def change(content: list[Any]) -> None:
        source = list(content[2][index])
        source[field] += 1
        content[2][index] = tuple(source)

    return change


def format_changed(content: list[Any]) -> None:
    content[0] = profiles.PROFILE_CACHE_FORMAT + 1


def path_changed(content: list[Any]) -> None:
    content[1] = "/another/checkout/card_profiles/mynumber-card.toml"


def document_replaced(content: list[Any]) -> None:
    content[3] = ["not", "a", "document"]


def document_without_card(content: list[Any]) -> None:
    del content[3]["card"]


def document_with_wrong_types(content: list[Any]) -> None:
    content[3]["applications"] = [{"name": "jpki", "aid": 7}]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(source_changed(1, 1), id="toml-size"),
        pytest.param(source_changed(1, 2), id="toml-mtime"),
        pytest.param(source_changed(0, 2), id="module-mtime"),
        pytest.param(format_changed, id="format-version"),
        pytest.param(path_changed, id="another-installation"),
        pytest.param(document_replaced, id="not-a-document"),
        pytest.param(document_without_card, id="document-without-card"),
        pytest.param(document_with_wrong_types, id="document-with-wrong-types"),
    ],
)
def test_a_stale_or_foreign_cache_is_ignored_and_rewritten(
    change: Callable[[list[Any]], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = load_uncached(DEFAULT_PROFILE)
    good = cache_file().read_bytes()
    rewrite_cache(change)
    parses = count_parses(monkeypatch)
    assert load_uncached(DEFAULT_PROFILE) == expected
    assert parses == [DEFAULT_PROFILE]
    assert cache_file().read_bytes() == good


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff garbage bytes \x00\x01", id="garbage"),
        pytest.param(None, id="truncated"),
        pytest.param(marshal.dumps(["a", "list"]), id="a-list"),
        pytest.param(marshal.dumps((1, 2, 3, 4)), id="wrong-types"),
        pytest.param(marshal.dumps((1, "x", [("only a path",)], {})), id="short-source"),
    ],
)
def test_a_corrupt_cache_is_ignored_and_rewritten(
    content: bytes | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = load_uncached(DEFAULT_PROFILE)
    good = cache_file().read_bytes()
    cache_file().write_bytes(good[: len(good) // 2] if content is None else content)
    parses = count_parses(monkeypatch)
    assert load_uncached(DEFAULT_PROFILE) == expected
    assert parses == [DEFAULT_PROFILE]
    assert cache_file().read_bytes() == good


@pytest.mark.parametrize(
    "loosen",
    [
        pytest.param(lambda path: os.chmod(path, 0o664), id="group-writable"),
        pytest.param(lambda path: os.chmod(path, 0o646), id="writable-by-others"),
        pytest.param(lambda path: os.chown(path, os.geteuid() + 1, -1), id="another-owner"),
    ],
)
def test_a_cache_others_could_have_written_is_not_trusted(
    loosen: Callable[[Path], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """marshal trusts its input, and the file stands for AIDs and access rules: only the
    user's own file, writable by nobody else, is read back."""
    expected = load_uncached(DEFAULT_PROFILE)
    good = cache_file().read_bytes()
    loosen(cache_file())
    parses = count_parses(monkeypatch)
    assert load_uncached(DEFAULT_PROFILE) == expected
    assert parses == [DEFAULT_PROFILE]
    status = cache_file().stat()
    assert cache_file().read_bytes() == good
    assert (status.st_uid, status.st_mode & 0o777) == (os.geteuid(), 0o644)


def test_the_cache_is_written_0644_whatever_the_umask(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = os.umask(0o002)  # Debian's user-private-group umask would make it 0664
    try:
        load_uncached(DEFAULT_PROFILE)
    finally:
        os.umask(previous)
    assert cache_file().stat().st_mode & 0o777 == 0o644
    parses = count_parses(monkeypatch)
    load_uncached(DEFAULT_PROFILE)
    assert parses == []


def test_a_cache_that_cannot_be_written_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, whom chmod does not stop: a regular file where a directory should be
    # makes os.makedirs fail instead.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MYNAKIT_CACHE_DIR", str(blocker / "cache"))
    assert load_uncached(DEFAULT_PROFILE) == fresh_parse(DEFAULT_PROFILE)
    assert blocker.read_text() == ""


def test_a_failed_replace_leaves_no_temporary_file() -> None:
    cache_file().mkdir(parents=True)  # os.replace cannot put a file over a directory
    assert load_uncached(DEFAULT_PROFILE) == fresh_parse(DEFAULT_PROFILE)
    assert [path.name for path in cache_file().parent.iterdir()] == [cache_file().name]


@pytest.fixture
def bundled_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bundled profiles copied to a folder of their own, which the tests may edit."""
    copy = tmp_path / "bundled"
    shutil.copytree(profiles.BUNDLED_PROFILES, copy)
    monkeypatch.setattr(profiles, "BUNDLED_PROFILES", str(copy))
    return copy


def test_an_edited_profile_is_parsed_again(
    bundled_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_uncached(SMARTPHONE).choices["short_read_at_end_sw"] == "9000"
    base = bundled_copy / f"{DEFAULT_PROFILE}.toml"
    text = base.read_text(encoding="utf-8")
    # The same size, so the mtime alone tells the change (set apart from the write's own mtime,
    # which can fall in the same clock tick as the first one).
    base.write_text(text.replace('end_sw = "9000"', 'end_sw = "6282"'), encoding="utf-8")
    modified = os.stat(base).st_mtime_ns + 1_000_000_000
    os.utime(base, ns=(modified, modified))
    parses = count_parses(monkeypatch)
    assert load_uncached(SMARTPHONE).choices["short_read_at_end_sw"] == "6282"
    assert parses == [SMARTPHONE, DEFAULT_PROFILE]  # the profile, then its base


def test_a_document_marshal_cannot_hold_is_not_cached(bundled_copy: Path) -> None:
    text = (bundled_copy / f"{DEFAULT_PROFILE}.toml").read_text(encoding="utf-8")
    dated = text.replace("[choices]\n", "[choices]\nchecked_on = 2026-06-01\n", 1)
    (bundled_copy / "dated.toml").write_text(dated, encoding="utf-8")
    assert str(load_uncached("dated").choices["checked_on"]) == "2026-06-01"
    assert not cache_file("dated").exists()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        pytest.param(None, UsageError, id="missing"),
        pytest.param("[card\n", DataError, id="not-toml"),
        pytest.param('[card]\nkind = "x"\n', DataError, id="incomplete"),
    ],
)
def test_a_broken_profile_fails_as_before_and_is_not_cached(
    content: str | None, error: type[Exception], bundled_copy: Path
) -> None:
    if content is not None:
        (bundled_copy / "broken.toml").write_text(content, encoding="utf-8")
    with pytest.raises(error):
        load_uncached("broken")
    assert not cache_file("broken").exists()
    with pytest.raises(error):
        load_uncached("broken")


def test_a_profile_given_by_path_is_not_cached(tmp_path: Path, cache_base: Path) -> None:
    path = tmp_path / "mine.toml"
    shutil.copy(os.path.join(profiles.BUNDLED_PROFILES, f"{DEFAULT_PROFILE}.toml"), path)
    assert load_uncached(str(path)) == fresh_parse(DEFAULT_PROFILE)
    assert not cache_base.exists()


def test_the_cache_directory_follows_xdg_without_mynakit_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MYNAKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert profile_cache_directory() == str(tmp_path / "xdg" / "mynakit" / "card_profiles")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for ignored in ("", "relative/cache"):  # the XDG specification: only absolute paths count
        monkeypatch.setenv("XDG_CACHE_HOME", ignored)
        assert profile_cache_directory() == str(
            tmp_path / "home" / ".cache" / "mynakit" / "card_profiles"
        )


def test_the_value_classes_compare_hash_and_print_by_field() -> None:
    file = FileProfile(file_id=1, name="token", structure="binary", size=160)
    assert file == FileProfile(1, "token", "binary", (), False, 160)
    assert file != FileProfile(file_id=1, name="token", structure="binary")
    assert hash(file) == hash(FileProfile(file_id=1, name="token", structure="binary", size=160))
    assert repr(file) == (
        "FileProfile(file_id=1, name='token', personal=False, read_keys=(), size=160, "
        "structure='binary')"
    )
    key = KeyProfile(key_id=0x18, name="auth_pin", kind="pin")
    assert (key.charset, key.change_instruction, key.unlocked_by) == ("digits", 0x0024, None)
    assert len({key, KeyProfile(key_id=0x18, name="auth_pin", kind="pin")}) == 1
    with pytest.raises(AttributeError):
        key.extra = 1  # type: ignore[attr-defined]  # slots: no attribute outside the fields


def test_each_application_gets_its_own_empty_tables() -> None:
    first = ApplicationProfile(name="a", label="A", aid=b"\x01")
    second = ApplicationProfile(name="a", label="A", aid=b"\x01")
    assert first.files == first.keys == {}
    assert first.files is not second.files
    assert first == second


def test_with_choices_copies_and_leaves_the_original_alone() -> None:
    original = load_uncached(DEFAULT_PROFILE)
    choices_before = dict(original.choices)
    changed = with_choices(original, short_read_at_end_sw="6282", new_choice=True)
    assert changed.choices == {**choices_before, "short_read_at_end_sw": "6282", "new_choice": True}
    assert original.choices == choices_before
    assert changed != original
    assert with_choices(original) == original
    for field in CardProfile.__slots__:
        if field != "choices":
            assert getattr(changed, field) == getattr(original, field)
