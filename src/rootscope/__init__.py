"""rootscope: measurements of plant roots from plate scans."""

__version__ = "0.1.0"
