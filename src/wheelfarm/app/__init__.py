"""The composition root: build the store, clients, servers and threads from settings.

Every command that runs something (``up``, ``serve``, ``follow``, ``sync``, ``write``,
``builder``) gets its parts from here; the command line only parses, calls these and prints.
"""
