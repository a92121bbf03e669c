"""Build index test states with the real write paths: changelog events, page-read register
updates, imports of real wheels, and builds reported through the builder API."""

from __future__ import annotations

import hashlib
import itertools
import shutil
from pathlib import Path

import httpx
from sqlalchemy import Engine

from tests.farm.test_intake import make_wheel, metadata_for
from wheelfarm.farm.api import FarmConfig, create_builder_app
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import add_builder, add_target, list_targets
from wheelfarm.farm.wheels import import_wheel
from wheelfarm.names import canonical
from wheelfarm.protocol import API_PREFIX
from wheelfarm.publish.tree import Tree
from wheelfarm.store.changes import Changes, write_changes
from wheelfarm.targets import Target
from wheelfarm.upstream.changelog import ChangelogBatch
from wheelfarm.upstream.events import parse_row
from wheelfarm.upstream.follow import Follower
from wheelfarm.web.runner import serve_in_thread

TARGET = Target.parse("cp311-cp311-linux_armv7l")
NOW = 1_700_000_000.0
UPSTREAM = "https://index.example.org/simple/"


class State:
    """A store and a published tree, changed the way wheelfarm changes them."""

    def __init__(self, engine: Engine, root: Path) -> None:
        self.engine = engine
        self.root = root
        self.tree = Tree(root / "www", root / "withdrawn")
        self.serials = itertools.count(1)
        self.keys = itertools.count(10**15)
        self.spool = root / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)

    @property
    def wheel_dir(self) -> Path:
        return self.tree.files

    def event(self, name: str, version: str | None, action: str) -> None:
        serial = next(self.serials)
        row = parse_row([name, version, 1_600_000_000 + serial, action, serial])
        Follower(self.engine, pages=None).apply_batch(  # type: ignore[arg-type]
            ChangelogBatch(events=[row], last_serial=serial)
        )

    def release(self, name: str, version: str, *filenames: str) -> None:
        """A release with files (an sdist unless other names are given)."""
        self.event(name, None, "create")
        for filename in filenames or (f"{name}-{version}.tar.gz",):
            kind = "cp311" if filename.endswith(".whl") else "source"
            self.event(name, version, f"add {kind} file {filename}")

    def details(
        self,
        name: str,
        version: str,
        filename: str,
        *,
        upload_time: str | None = None,
        requires_python: str | None = None,
    ) -> None:
        """What a page read tells about an upstream file."""
        changes = Changes()
        file = changes.file(canonical(name), version, filename)
        file.upload_time, file.requires_python = upload_time, requires_python
        self.write(changes)

    def yank(self, name: str, version: str, reason: str | None) -> None:
        """A page read that finds the release yanked (with the reason, if any)."""
        changes = Changes()
        changes.release(canonical(name), version).set_yank(next(self.keys), True, reason)
        self.write(changes)

    def summary(self, name: str, summary: str) -> None:
        changes = Changes()
        changes.project(canonical(name)).summary = summary
        self.write(changes)

    def write(self, changes: Changes) -> None:
        with self.engine.begin() as connection:
            write_changes(connection, changes)

    def target(self, target: Target = TARGET) -> None:
        with self.engine.begin() as connection:
            add_target(connection, target)

    def schedule(self, name: str) -> None:
        with self.engine.begin() as connection:
            schedule_project(connection, canonical(name), list_targets(connection), now=NOW)

    def import_wheel(
        self, filename: str, *, requires_python: str | None = None, metadata: bytes | None = None
    ) -> Path:
        """A real wheel, validated and stored by ``wheelfarm import``'s code."""
        name, version = filename.split("-")[:2]
        data = metadata or metadata_for(name, version, requires_python=requires_python)
        spooled = make_wheel(self.spool, filename, metadata=data)
        path = self.spool / filename
        shutil.move(spooled, path)
        with self.engine.begin() as connection:
            import_wheel(connection, path, self.wheel_dir, now=NOW)
        return self.wheel_dir / canonical(name) / filename

    def build(self, filename: str | None, *, log: str, status: str = "built") -> int:
        """One build through the builder API: claim, upload ``filename`` (if any), report."""
        with self.engine.begin() as connection:
            token = add_builder(connection, f"b{next(self.serials)}", now=NOW)
        config = FarmConfig(index_url=UPSTREAM, wheel_dir=self.wheel_dir)
        headers = {"Authorization": f"Bearer {token}"}
        server = serve_in_thread(create_builder_app(self.engine, config, clock=lambda: NOW))
        with httpx.Client(base_url=server.url, timeout=60) as client:
            hello = {"target": TARGET.name, "platforms": [], "python": "3.11.7", "os": "linux"}
            assert client.post(f"{API_PREFIX}/hello", json=hello, headers=headers).is_success
            job = client.post(f"{API_PREFIX}/claim", headers=headers).json()["job"]
            build_id = int(job["build_id"])
            if filename is not None:
                wheel = make_wheel(self.spool, filename).read_bytes()
                uploaded = client.put(
                    f"{API_PREFIX}/builds/{build_id}/files/{filename}",
                    content=wheel,
                    headers={
                        **headers,
                        "X-Wheel-Sha256": hashlib.sha256(wheel).hexdigest(),
                        "Content-Length": str(len(wheel)),
                    },
                )
                assert uploaded.status_code == 201, uploaded.text
            report = {"status": status, "reason": "", "duration": 2.5, "log": log}
            result = client.post(
                f"{API_PREFIX}/builds/{build_id}/result", json=report, headers=headers
            )
            assert result.is_success, result.text
        server.stop()
        return build_id
