"""The local web app and REST API (``colorize app`` / ``colorize serve``), over one shared core.

Needs the ``app`` extra (FastAPI, Uvicorn, python-multipart): ``pip install "colorizer[app]"``.
``colorizer.server.settings`` and ``colorizer.server.cli`` import without it.
"""

from colorizer.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from colorizer.server.app import create_app

        return create_app
    raise AttributeError(name)
