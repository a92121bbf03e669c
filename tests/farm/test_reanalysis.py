"""``wheelfarm dependencies --reanalyse``: wheels stored without an analysis get one."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import delete, select, update

from tests.farm.test_cli_farm import wheelfarm
from tests.farm.test_intake import make_wheel
from tests.farm.test_sysdeps import USES_YAML, cc, published
from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.store.database import open_store
from wheelfarm.store.schema import build_files, file_dependencies
from wheelfarm.targets import local_target


def test_wheels_stored_before_the_analysis_are_analysed_once(
    tmp_path: Path, database_url: str
) -> None:
    with FakeUpstream() as upstream:
        upstream.create("foo")
        upstream.add_file("foo", "1.0", "foo-1.0.tar.gz")
        assert wheelfarm(tmp_path, database_url, "targets", "add").returncode == 0
        added = wheelfarm(tmp_path, database_url, "add", "foo", upstream=upstream.simple_url)
        assert added.returncode == 0, added.stderr
    filename = f"foo-1.0-{local_target().name}.whl"
    objects = {"foo/_yaml.so": cc(tmp_path, "y.so", USES_YAML, "-lyaml").read_bytes()}
    wheel = tmp_path / filename
    wheel.write_bytes(make_wheel(tmp_path, filename, objects).read_bytes())
    data = tmp_path / "data"
    imported = wheelfarm(tmp_path, database_url, "--data-dir", str(data), "import", str(wheel))
    assert imported.returncode == 0, imported.stderr

    engine = open_store(database_url)
    try:
        with engine.begin() as connection:
            assert connection.execute(select(build_files.c.analysed)).scalar_one() is True
            # as the wheel was before the analysis existed; and one whose file is gone
            connection.execute(delete(file_dependencies))
            connection.execute(update(build_files).values(analysed=False))
            published(connection, "gone-1-py3-none-any.whl", local_target().name)

        reanalysed = wheelfarm(
            tmp_path, database_url, "--data-dir", str(data), "dependencies", "--reanalyse"
        )
        assert reanalysed.returncode == 0, reanalysed.stderr
        assert "analysed 2 of 2 wheels" in reanalysed.stderr  # the progress line
        assert reanalysed.stdout.startswith("analysed 1 wheel; 1 not found in ")
        shown = wheelfarm(tmp_path, database_url, "dependencies", filename, "--json")
        assert json.loads(shown.stdout)[filename]["apt"] == ["libyaml-0-2"]

        again = wheelfarm(
            tmp_path, database_url, "--data-dir", str(data), "dependencies", "--reanalyse"
        )
        assert again.stdout.startswith("analysed 0 wheels; 1 not found")  # only the gone one
        with engine.connect() as connection:
            analysed = dict(
                connection.execute(select(build_files.c.filename, build_files.c.analysed)).all()
            )
        assert analysed == {filename: True, "gone-1-py3-none-any.whl": False}
    finally:
        engine.dispose()
