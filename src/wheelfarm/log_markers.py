"""The lines that divide a build log into its header, the build's output and its footer.

The builder writes them and the master reads them (triage, stored logs); they live apart from
:mod:`wheelfarm.protocol` so that reading a log does not import pydantic, which commands such as
``wheelfarm builds`` would otherwise pay for at every start.
"""

from __future__ import annotations

__all__ = ["LOG_END_MARKER", "LOG_HEADER_MARKER", "LOG_OUTPUT_MARKER"]

# The header opens with the first (:mod:`wheelfarm.builder.log_frame`), pip's output follows the
# second, the footer opens with the third; the master's triage reads header and footer apart.

LOG_HEADER_MARKER = "=== wheelfarm build ==="
LOG_OUTPUT_MARKER = "=== build output ==="
LOG_END_MARKER = "=== end of build ==="
