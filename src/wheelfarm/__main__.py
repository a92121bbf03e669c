"""``python -m wheelfarm``."""

from wheelfarm.cli.main import main

main()
