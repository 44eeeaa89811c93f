"""Smooth video: keep what did not change from one frame to the next, so the painting does not crawl.

Each session (a video, a webcam visitor) has its own `Smoother`, which paints frames in order:

- `flow`: DIS optical flow from this frame back to the last, and per pixel whether to trust it;
- `smooth`: the network paints a smoothed input, and carries its features from the last frame along the flow;
- `canvas`: while the camera moves, the output is a key frame's painting glued to the scene.

How far each part takes the flicker, and what was tried, is measured by `python -m bench.temporal` and written
up in bench/RESULTS.md ("Smooth video: where fastnst.temporal's choices come from").
"""
from .canvas import GLUE, GLUE_SPEEDS, KEY_CUT, KEY_REFRESH, KEY_UPDATE_EVERY, Canvas, band_limited_double
from .flow import (
    CAMERA_SHARE,
    FLOW_SIDE,
    TRUST_LEVELS,
    away_from_motion_edges,
    camera_motion,
    camera_speed,
    consistent,
    flow_between,
    still,
    warp,
)
from .smooth import CARRY, FEATURES, SMOOTH, STILL_FRESH, Smoother, carry_features

__all__ = ["CAMERA_SHARE", "CARRY", "FEATURES", "FLOW_SIDE", "GLUE", "GLUE_SPEEDS", "KEY_CUT", "KEY_REFRESH",
           "KEY_UPDATE_EVERY", "SMOOTH", "STILL_FRESH", "TRUST_LEVELS", "Canvas", "Smoother", "away_from_motion_edges",
           "band_limited_double", "camera_motion", "camera_speed", "carry_features", "consistent", "flow_between",
           "still", "warp"]
