"""Colorize films: streamed through any image model, steadied along the optical flow.

* :func:`colorize_video` - a video file in, the colorized file out (audio copied, resumable).
* :class:`FlowPropagator` - the temporal-consistency post-process, one frame at a time.
* :func:`warping_error` - how much a colorized sequence flickers, in ab units.
* :func:`load_keyframes` - a film's keyframes (colour frames or hints) from a manifest or
  images named by position; :func:`keyframes_digest` for the job record.

The names are loaded on first use, so ``colorize --help`` (which reads ``colorizer.video.cli``)
does not load PyAV (FFmpeg), OpenCV or PyTorch.
"""

from __future__ import annotations

from colorizer.lazy import lazy_attributes

_WHERE = {
    "VideoOptions": "colorize",
    "VideoReport": "colorize",
    "colorize_video": "colorize",
    "FlowPropagator": "consistency",
    "Keyframe": "keyframes",
    "KeyframeError": "keyframes",
    "keyframes_digest": "keyframes",
    "load_keyframes": "keyframes",
    "WarpingError": "metrics",
    "warping_error": "metrics",
    "EncoderSettings": "output",
    "VideoWriteError": "output",
    "VideoReadError": "source",
    "RefinerPropagator": "refiner",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_attributes(__name__, _WHERE)
