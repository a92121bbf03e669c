"""``python -m wheelfarm``."""

from wheelfarm.cli import main

main()
