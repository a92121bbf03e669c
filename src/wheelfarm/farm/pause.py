"""The whole farm paused: by an operator (``wheelfarm farm pause``) or by the master itself.

While paused no builder is handed a job (builds under way finish). The master pauses the farm
when the disk its wheels go to runs low (``wheelfarm.monitor.sampler``) and resumes it when
space returns; an operator's pause is never lifted by the master, and ``resume`` lifts both.
The flag lives in the store's ``state`` table, so every process of the master sees it.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Connection, delete

from wheelfarm.store.journal import get_state, set_state
from wheelfarm.store.schema import state

__all__ = ["PAUSED", "PauseReason", "farm_paused", "pause_farm", "resume_farm"]

PAUSED = "farm_paused"
#: Why the farm is paused: ``operator`` (a person said so) or ``disk`` (the master's disk).
PauseReason = Literal["operator", "disk"]


def farm_paused(connection: Connection) -> PauseReason | None:
    """Why the farm is paused, or None when it builds."""
    value = get_state(connection, PAUSED)
    if value == "operator":
        return "operator"
    if value == "disk":
        return "disk"
    return None


def pause_farm(connection: Connection, reason: PauseReason) -> None:
    """Pause the farm; a disk pause never replaces an operator's."""
    if reason == "disk" and farm_paused(connection) == "operator":
        return
    set_state(connection, PAUSED, reason)


def resume_farm(connection: Connection, reason: PauseReason | None = None) -> bool:
    """Resume the farm (only a pause for ``reason``, when given); False: it was not paused so."""
    current = farm_paused(connection)
    if current is None or (reason is not None and current != reason):
        return False
    connection.execute(delete(state).where(state.c.name == PAUSED))
    return True
