"""``rootscope synth`` and ``rootscope demo``."""
