"""System dependencies: real objects from gcc, this machine's loader cache and dpkg database."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sysconfig
import tempfile
import threading
import zipfile
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection, Engine, insert, select

from tests.farm.conftest import Farm, hello
from tests.farm.test_cli_farm import wheelfarm
from tests.farm.test_intake import make_wheel
from tests.fixtures.fake_upstream import FakeUpstream
from tests.fixtures.sdists import make_sdist
from wheelfarm.builder.libraries import SystemLibraries
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.builder.sysdeps import AnalysisLimits, analyse_wheel, to_wire
from wheelfarm.farm.dependencies import (
    load_distro,
    record_dependencies,
    set_target_distro,
    wheel_dependencies,
)
from wheelfarm.farm.distros import DistroFileError, parse_package_list, shipped_lists, snapshot
from wheelfarm.farm.registry import add_target
from wheelfarm.protocol import API_PREFIX, MAX_DEPENDENCIES_HEADER, WheelDependencies
from wheelfarm.store.database import open_store
from wheelfarm.store.schema import build_files, builds, file_dependencies
from wheelfarm.targets import Target, local_target

MULTIARCH = sysconfig.get_config_var("MULTIARCH")
USES_YAML = "#include <yaml.h>\nconst char *v(void) { return yaml_get_version_string(); }\n"
USES_LIBC = "#include <string.h>\nconst char *e(void) { return strerror(0); }\n"
USES_MISSING = "const char *missing(void);\nconst char *m(void) { return missing(); }\n"


def cc(directory: Path, name: str, source: str, *flags: str) -> Path:
    """Compile a shared object with the real gcc."""
    directory.mkdir(parents=True, exist_ok=True)
    c_file = directory / f"{name}.c"
    c_file.write_text(source)
    output = directory / name
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(output), str(c_file), *flags],
        check=True,
        capture_output=True,
    )
    return output


def missing_stub(directory: Path) -> Path:
    """libdoesnotexist.so.7: linked against, then left out of the wheel."""
    return cc(
        directory / "stub",
        "libdoesnotexist.so.7",
        'const char *missing(void) { return "x"; }\n',
        "-Wl,-soname,libdoesnotexist.so.7",
    )


def links_missing(directory: Path, *flags: str) -> Path:
    stub = missing_stub(directory)
    (stub.parent / "libdoesnotexist.so").unlink(missing_ok=True)
    (stub.parent / "libdoesnotexist.so").symlink_to(stub.name)
    return cc(
        directory, "uses_missing.so", USES_MISSING, f"-L{stub.parent}", "-ldoesnotexist", *flags
    )


def wheel_of(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A zip with these members, and symlink members (name -> target) if asked."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            link = zipfile.ZipInfo(name)
            link.create_system = 3
            link.external_attr = 0o120777 << 16
            archive.writestr(link, target)
    return path


def test_a_library_from_a_package_and_libc(tmp_path: Path) -> None:
    yaml_so = cc(tmp_path, "uses_yaml.so", USES_YAML + USES_LIBC, "-lyaml")
    libc_so = cc(tmp_path, "uses_libc.so", USES_LIBC)
    wheel = wheel_of(
        tmp_path / "x.whl",
        {"pkg/_yaml.so": yaml_so.read_bytes(), "pkg/_c.so": libc_so.read_bytes()},
    )
    found = analyse_wheel(wheel)
    assert found.apt == ("libc6", "libyaml-0-2")
    assert (found.unresolved, found.bundled, found.problems) == ((), (), ())
    only_libc = analyse_wheel(wheel_of(tmp_path / "c.whl", {"c.so": libc_so.read_bytes()}))
    assert only_libc.apt == ("libc6",)


def test_objects_are_found_by_content_not_by_name(tmp_path: Path) -> None:
    yaml_so = cc(tmp_path, "uses_yaml.so", USES_YAML, "-lyaml")
    wheel = wheel_of(
        tmp_path / "x.whl",
        {"pkg/data.bin": yaml_so.read_bytes(), "pkg/fake.so": b"not an ELF file at all"},
    )
    assert analyse_wheel(wheel).apt == ("libyaml-0-2",)


def test_a_library_found_nowhere_is_unresolved_by_soname(tmp_path: Path) -> None:
    consumer = links_missing(tmp_path)
    found = analyse_wheel(wheel_of(tmp_path / "x.whl", {"pkg/m.so": consumer.read_bytes()}))
    assert found.unresolved == ("libdoesnotexist.so.7",)
    assert found.bundled == () and found.problems == ()


@pytest.mark.parametrize("tags", ["--enable-new-dtags", "--disable-new-dtags"])  # RUNPATH, RPATH
def test_a_library_bundled_through_origin_is_satisfied(tmp_path: Path, tags: str) -> None:
    consumer = links_missing(tmp_path, "-Wl,-rpath,$ORIGIN/.libs", f"-Wl,{tags}")
    stub = missing_stub(tmp_path).read_bytes()
    found = analyse_wheel(
        wheel_of(
            tmp_path / "x.whl",
            {"pkg/m.so": consumer.read_bytes(), "pkg/.libs/libdoesnotexist.so.7": stub},
        )
    )
    assert found.bundled == ("libdoesnotexist.so.7",)
    assert found.unresolved == ()
    # The bundled copy's own needs are analysed too: nothing but what the stub links.
    assert set(found.apt) <= {"libc6"}


def test_an_origin_path_that_leaves_the_wheel_is_not_followed(tmp_path: Path) -> None:
    consumer = links_missing(tmp_path, "-Wl,-rpath,$ORIGIN/../../../stub")
    found = analyse_wheel(wheel_of(tmp_path / "x.whl", {"pkg/m.so": consumer.read_bytes()}))
    assert found.unresolved == ("libdoesnotexist.so.7",)


def test_an_absolute_rpath_is_searched_on_this_machine(tmp_path: Path) -> None:
    stub_dir = missing_stub(tmp_path).parent
    consumer = links_missing(tmp_path, f"-Wl,-rpath,{stub_dir}")
    found = analyse_wheel(wheel_of(tmp_path / "x.whl", {"m.so": consumer.read_bytes()}))
    assert found.unresolved == ("libdoesnotexist.so.7",)  # found, but no package owns it
    assert found.bundled == ()


def test_only_a_library_of_the_objects_own_machine_counts(tmp_path: Path) -> None:
    data = bytearray(cc(tmp_path, "uses_libc.so", USES_LIBC).read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64: this machine has no such libc
    found = analyse_wheel(wheel_of(tmp_path / "x.whl", {"arm.so": bytes(data)}))
    assert found.unresolved == ("libc.so.6",) and found.apt == ()


def test_malformed_huge_and_symlinked_members_are_recorded_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    good = cc(tmp_path, "uses_yaml.so", USES_YAML, "-lyaml").read_bytes()
    wheel = wheel_of(
        tmp_path / "x.whl",
        {
            "pkg/good.so": good,
            "pkg/truncated.so": good[:200],
            "pkg/garbage.so": good[:64] + b"\xff" * (len(good) - 64),  # a header, then junk
            "pkg/huge.so": good + b"\0" * 5000,
        },
        {"pkg/escape.so": f"../../../../lib/{MULTIARCH}/libc.so.6"},
    )
    limits = AnalysisLimits(max_object_bytes=len(good) + 100)
    found = analyse_wheel(wheel, limits=limits)
    assert found.apt == ("libyaml-0-2",)
    problems = "\n".join(found.problems)
    assert "pkg/truncated.so: malformed ELF" in problems
    assert "pkg/garbage.so: malformed ELF" in problems
    assert f"pkg/huge.so: larger than {len(good) + 100} bytes, not analysed" in problems
    assert "pkg/escape.so: a symlink, not followed" in problems
    assert list(scratch.iterdir()) == []  # the private scratch directory is gone


def test_a_needed_name_that_is_not_a_plain_name_is_a_problem(tmp_path: Path) -> None:
    data = links_missing(tmp_path).read_bytes()
    assert data.count(b"libdoesnotexist.so.7") == 1  # only in the string table
    bad = data.replace(b"libdoesnotexist.so.7", b"../../etc/xy z\n.so.7")  # same length
    found = analyse_wheel(wheel_of(tmp_path / "x.whl", {"m.so": bad}))
    assert found.unresolved == ()
    assert found.problems == ("m.so: NEEDED '../../etc/xy z\\n.so.7' is not a plain library name",)
    assert to_wire(found).problems == list(found.problems)  # and it can be sent


def test_a_file_that_is_not_a_zip_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "x.whl"
    path.write_bytes(b"\x7fELF but no zip")
    found = analyse_wheel(path)
    assert found.apt == () and "x.whl: not analysed" in found.problems[0]


def test_dpkg_owners_are_found_through_merged_usr_aliases() -> None:
    libraries = SystemLibraries()
    # zlib1g lists /lib/..., libyaml-0-2 lists /usr/lib/...: both are found either way.
    for directory in (f"/lib/{MULTIARCH}", f"/usr/lib/{MULTIARCH}"):
        assert libraries.owner(f"{directory}/libz.so.1") == "zlib1g"
        assert libraries.owner(f"{directory}/libyaml-0.so.2") == "libyaml-0-2"
    assert libraries.owner("/nonexistent/libz.so.1") is None


def test_the_dependencies_header_is_cut_to_fit() -> None:
    many = WheelDependencies(
        apt=[f"libpackage{i}" for i in range(300)],
        bundled=[f"libbundled{i}.so.1" for i in range(300)],
        problems=["x" * 300] * 50,
    )
    text = many.header()
    assert len(text) <= MAX_DEPENDENCIES_HEADER
    sent = WheelDependencies.model_validate_json(text)
    assert sent.apt == many.apt and sent.bundled == []
    assert sent.problems == ["the dependency list was cut to fit the upload header"]


# -- the master: storage, subtraction per distro ------------------------------------------


def published(connection: Connection, filename: str, target: str) -> None:
    build_id = connection.execute(
        insert(builds)
        .values(project="p", version="1", target=target, builder="b", started_at=0, status="built")
        .returning(builds.c.id)
    ).scalar_one()
    connection.execute(
        insert(build_files).values(
            filename=filename,
            build_id=build_id,
            project="p",
            version="1",
            target=target,
            sha256="0" * 64,
            size=1,
            tags="",
        )
    )


def test_subtraction_per_distro(engine: Engine) -> None:
    needs = WheelDependencies(
        apt=["libc6", "libyaml-0-2", "zlib1g"], unresolved=["libx.so.1"], bundled=["liby.so.2"]
    )
    with engine.begin() as connection:
        for name, distro in (
            ("cp311-cp311-linux_armv7l", "small"),
            ("cp39-cp39-linux_armv7l", "big"),
        ):
            add_target(connection, Target.parse(name), distro)
        add_target(connection, Target.parse("cp312-cp312-linux_armv7l"))  # no distro
        load_distro(connection, "small", ["libc6"], "small.txt")
        load_distro(connection, "big", ["libc6", "zlib1g", "libyaml-0-2"], "big.txt")
        files = {"a.whl": "cp311-cp311-linux_armv7l", "b.whl": "cp39-cp39-linux_armv7l"}
        files |= {"c.whl": "cp312-cp312-linux_armv7l"}
        for filename, target in files.items():
            published(connection, filename, target)
            record_dependencies(connection, filename, needs)
    with engine.connect() as connection:
        found = wheel_dependencies(connection, ["a.whl", "b.whl", "c.whl", "never.whl"])
    assert found["a.whl"] == (("libyaml-0-2", "zlib1g"), ("libx.so.1",))
    assert found["b.whl"] == ((), ("libx.so.1",))
    assert found["c.whl"] == (("libc6", "libyaml-0-2", "zlib1g"), ("libx.so.1",))
    assert found["never.whl"] == ((), ())
    with engine.begin() as connection:  # a new list for a distro replaces the old one
        load_distro(connection, "big", ["libc6"], "big2.txt")
        set_target_distro(connection, "cp312-cp312-linux_armv7l", "big")
        found = wheel_dependencies(connection, ["b.whl", "c.whl"])
    assert found["b.whl"].apt == found["c.whl"].apt == ("libyaml-0-2", "zlib1g")


def test_many_files_are_read_in_batches(engine: Engine) -> None:
    with engine.begin() as connection:
        add_target(connection, Target.parse("cp311-cp311-linux_armv7l"), "d")
        load_distro(connection, "d", ["libc6"], None)
        for number in range(1200):
            published(connection, f"{number}.whl", "cp311-cp311-linux_armv7l")
        connection.execute(
            insert(file_dependencies),
            [
                {"filename": f"{n}.whl", "tool": "apt", "name": name}
                for n in range(1200)
                for name in ("libc6", f"libp{n % 7}")
            ],
        )
        found = wheel_dependencies(connection, [f"{n}.whl" for n in range(1200)])
    assert len(found) == 1200
    assert all(found[f"{n}.whl"].apt == (f"libp{n % 7}",) for n in range(1200))


def test_package_lists_are_validated_line_by_line() -> None:
    assert parse_package_list("# base\n\nlibc6\nzlib1g:armhf  # qualified\n", "f") == [
        "libc6",
        "zlib1g",
    ]
    with pytest.raises(DistroFileError, match=r"^list.txt, line 3: 'Bad_Name' is not a Debian"):
        parse_package_list("libc6\n\nBad_Name\n", "list.txt")


def test_the_snapshot_is_the_installed_packages_sorted() -> None:
    packages = snapshot()
    assert packages == sorted(packages)
    assert {"dpkg", "libc6", "libyaml-0-2"} <= set(packages)
    assert all(":" not in name for name in packages)


def test_shipped_lists_are_real_debian_names_and_lack_libyaml() -> None:
    lists = shipped_lists()
    assert {"debian-bookworm-base", "debian-bullseye-base"} <= set(lists)
    for path in lists.values():
        packages = parse_package_list(path.read_text(), str(path))
        assert "libc6" in packages and "libyaml-0-2" not in packages


def test_distro_commands(tmp_path: Path, database_url: str) -> None:
    target = "cp311-cp311-linux_armv7l"
    assert wheelfarm(tmp_path, database_url, "targets", "add", target).returncode == 0
    mine = tmp_path / "pi-lite.txt"
    mine.write_text("# from a Lite image\nlibc6\nzlib1g\n")
    loaded = wheelfarm(tmp_path, database_url, "distros", "load", str(mine))
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 2 packages for distro pi-lite" in loaded.stdout
    shipped = wheelfarm(tmp_path, database_url, "distros", "load", "debian-bookworm-base")
    assert shipped.returncode == 0, shipped.stderr
    mine.write_text("libc6\nlibfoo\n\nNot A Package\n")
    bad = wheelfarm(tmp_path, database_url, "distros", "load", str(mine))
    assert bad.returncode == 2
    assert f"{mine}, line 4: 'Not A Package' is not a Debian package name" in bad.stderr
    told = wheelfarm(tmp_path, database_url, "targets", "set-distro", target, "pi-lite")
    assert told.returncode == 0, told.stderr
    assert "pi-lite" in wheelfarm(tmp_path, database_url, "targets", "list").stdout
    listed = json.loads(wheelfarm(tmp_path, database_url, "distros", "list", "--json").stdout)
    assert [(d["name"], d["packages"], d["targets"]) for d in listed] == [
        ("debian-bookworm-base", 156, []),
        ("pi-lite", 2, [target]),  # the bad file changed nothing
    ]
    missing = wheelfarm(tmp_path, database_url, "targets", "set-distro", "cp39-cp39-x", "d")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    printed = wheelfarm(tmp_path, database_url, "distros", "snapshot")
    assert printed.stdout.split() == snapshot()


# -- end to end: a real builder over HTTP, and imports -------------------------------------


def test_a_real_builder_uploads_dependencies_the_master_stores_them(
    farm: Farm, tmp_path: Path
) -> None:
    sdists = tmp_path / "sdists"
    for name, library in (("demo-yaml", "yaml"), ("demo-libc", "c")):
        farm.publish(make_sdist(sdists, name, "1.0", kind="c", link_library=library), name, "1.0")
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=("--no-build-isolation",))
    assert run_builder(farm.client(), options, threading.Event(), jobs=2) == 2
    with farm.engine.begin() as connection:
        files = dict(
            connection.execute(select(build_files.c.project, build_files.c.filename)).all()
        )
        assert set(files) == {"demo-yaml", "demo-libc"}
        stored = sorted(
            (row.filename.split("-")[0], row.tool, row.name)
            for row in connection.execute(select(file_dependencies))
        )
        assert stored == [
            ("demo_libc", "apt", "libc6"),
            ("demo_yaml", "apt", "libyaml-0-2"),  # it calls nothing of libc's itself
        ]
        before = wheel_dependencies(connection, files.values())
        assert before[files["demo-libc"]].apt == ("libc6",)  # no distro yet: nothing subtracted
        load_distro(connection, "debian-bookworm-base", ["libc6", "zlib1g"], None)
        set_target_distro(connection, local_target().name, "debian-bookworm-base")
        after = wheel_dependencies(connection, files.values())
    assert after[files["demo-yaml"]] == (("libyaml-0-2",), ())
    assert after[files["demo-libc"]] == ((), ())


def test_a_malformed_dependencies_header_is_refused(farm: Farm, tmp_path: Path) -> None:
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    client = farm.client()
    hello(client)
    job = client.claim().job
    assert job is not None
    wheel = make_wheel(tmp_path, "demo_pure-1.0-py3-none-any.whl")
    data = wheel.read_bytes()
    for header, expected in (
        ('{"apt": ["Not A Package"]}', "apt.0"),
        ('{"unresolved": ["../lib/libc.so.6"]}', "unresolved.0"),
        ('{"surprise": 1}', "surprise"),
        ("not json", "X-Wheel-Dependencies"),
    ):
        response = httpx.put(
            f"{farm.server.url}{API_PREFIX}/builds/{job.build_id}/files/"
            "demo_pure-1.0-py3-none-any.whl",
            content=data,
            headers={
                "Authorization": f"Bearer {farm.token}",
                "X-Wheel-Sha256": hashlib.sha256(data).hexdigest(),
                "X-Wheel-Dependencies": header,
            },
        )
        assert response.status_code == 422, header
        assert expected in str(response.json()["detail"])
    with farm.engine.connect() as connection:
        assert connection.execute(select(build_files)).first() is None


def test_an_imported_wheel_is_analysed_on_the_master(tmp_path: Path, database_url: str) -> None:
    with FakeUpstream() as upstream:
        upstream.create("foo")
        upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
        assert wheelfarm(tmp_path, database_url, "targets", "add").returncode == 0
        added = wheelfarm(tmp_path, database_url, "add", "foo", upstream=upstream.simple_url)
        assert added.returncode == 0, added.stderr
    objects = {
        "foo/_yaml.so": cc(tmp_path, "y.so", USES_YAML, "-lyaml").read_bytes(),
        "foo/_missing.so": links_missing(tmp_path).read_bytes(),
    }
    filename = f"foo-1.0-{local_target().name}.whl"
    wheel = tmp_path / filename
    wheel.write_bytes(make_wheel(tmp_path, filename, objects).read_bytes())
    data = tmp_path / "data"
    imported = wheelfarm(tmp_path, database_url, "--data-dir", str(data), "import", str(wheel))
    assert imported.returncode == 0, imported.stderr
    shown = wheelfarm(tmp_path, database_url, "dependencies", "--project", "foo", "--json")
    assert json.loads(shown.stdout) == {
        filename: {
            "apt": ["libyaml-0-2"],
            "unresolved": ["libdoesnotexist.so.7"],
            "bundled": [],
            "problems": [],
        }
    }
    engine = open_store(database_url)
    try:
        with engine.connect() as connection:
            assert wheel_dependencies(connection, [filename])[filename].apt == ("libyaml-0-2",)
    finally:
        engine.dispose()
    removed = wheelfarm(tmp_path, database_url, "--data-dir", str(data), "remove", "foo")
    assert removed.returncode == 0, removed.stderr
