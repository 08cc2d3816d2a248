"""Colorize archives on a Ray cluster: the same jobs as ``colorize image`` / ``colorize video``.

* :func:`colorize_images` - files, folders or URIs, colorized by a pool of Ray actors.
* :func:`colorize_video` - a film's segments colorized as parallel Ray tasks.
* :class:`ClusterOptions`, :class:`ColorizerSpec` - where and how.
* :func:`ray_session` - Ray for the length of a block (a cluster, or a Ray on 127.0.0.1).

``ray`` (the ``cluster`` extra) is imported only when a run starts. See ``docs/cluster.md``.
"""

from __future__ import annotations

from colorizer.lazy import lazy_attributes

_WHERE = {
    "colorize_images": "api",
    "colorize_video": "api",
    "ClusterOptions": "settings",
    "ColorizerSpec": "settings",
    "ray_session": "session",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_attributes(__name__, _WHERE)
