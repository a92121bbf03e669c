"""``wheelfarm import`` takes a wheel's build tag as it is, when its name and WHEEL agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from tests.farm.test_intake import WHEEL, make_wheel
from tests.publish.states import NOW, TARGET, State
from wheelfarm.farm.wheels import ImportRefused, import_wheel
from wheelfarm.store.schema import build_files, builds


@pytest.mark.parametrize(
    ("filename", "build_line", "outcome"),
    [
        ("foo-1.0-py3-none-any.whl", None, 0),  # no tag anywhere: build 0
        ("foo-1.0-3-py3-none-any.whl", "3", 3),  # rebuilt elsewhere: recorded as build 3
        ("foo-1.0-2ab-py3-none-any.whl", "2ab", 2),  # a suffix is the spec's too
        (
            "foo-1.0-3-py3-none-any.whl",
            None,
            "WHEEL says Build: none, the file name's build tag is 3",
        ),
        (
            "foo-1.0-py3-none-any.whl",
            "7",
            "WHEEL says Build: 7, the file name's build tag is none",
        ),
        (
            "foo-1.0-3-py3-none-any.whl",
            "4",
            "WHEEL says Build: 4, the file name's build tag is 3",
        ),
    ],
)
def test_an_imported_wheels_build_tag_must_agree_with_its_wheel_file(
    engine: Engine, tmp_path: Path, filename: str, build_line: str | None, outcome: int | str
) -> None:
    """``outcome``: the build number recorded, or the words of the refusal."""
    state = State(engine, tmp_path)
    state.release("foo", "1.0")
    state.target(TARGET)
    wheel_file = WHEEL + (f"Build: {build_line}\n".encode() if build_line else b"")
    spooled = make_wheel(tmp_path, filename, {"foo-1.0.dist-info/WHEEL": wheel_file}, wheel=False)
    wheel = spooled.rename(tmp_path / filename)
    with engine.begin() as connection:
        if isinstance(outcome, str):
            with pytest.raises(ImportRefused, match=outcome):
                import_wheel(connection, wheel, state.wheel_dir, now=NOW)
            stored = connection.execute(select(build_files.c.filename)).scalars().all()
            assert (stored, list(state.wheel_dir.glob("*/*.whl"))) == ([], [])  # nothing kept
            return
        import_wheel(connection, wheel, state.wheel_dir, now=NOW)
        number = connection.execute(select(builds.c.build_number)).scalar_one()
    assert number == outcome
