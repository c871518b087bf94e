"""Overlay video: the source frames with every track's mask blended in its colour, its outline,
and a ``<class name> <n>`` label on the mask (tracks numbered 1, 2, ... per video); the source
fps is kept.

A track keeps one colour for its whole life: the colour is a function of its ``track_id``
(golden-ratio hue steps, so consecutive ids get far-apart hues).

Codec probe: ``avc1`` (H.264, plays in browsers) when the OpenCV build can encode it, else
``mp4v`` (MPEG-4 part 2, in every OpenCV wheel), with a warning naming the fallback. The pip
``opencv-python(-headless)`` wheels usually lack an H.264 encoder.
"""

import colorsys
import os
import warnings
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..io.files import atomic_output
from ..io.video import FrameSource, open_video
from ..tracks import VideoTracks

DEFAULT_CODECS = ("avc1", "mp4v")
DEFAULT_FPS = 30.0
_GOLDEN_RATIO_CONJUGATE = 0.6180339887498949


def track_colour(track_id: int) -> Tuple[int, int, int]:
    """BGR uint8 colour of a track, fixed by its id."""
    hue = (int(track_id) * _GOLDEN_RATIO_CONJUGATE) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(blue * 255), int(green * 255), int(red * 255)


def open_video_writer(
    path: Union[str, os.PathLike],
    fps: float,
    frame_size: Tuple[int, int],
    codecs: Sequence[str] = DEFAULT_CODECS,
) -> Tuple[cv2.VideoWriter, str]:
    """An opened ``cv2.VideoWriter`` with the first codec of ``codecs`` that works here.

    Args:
        frame_size (tuple[int, int]): (height, width).
    Returns:
        (writer, codec); the caller may warn when ``codec`` is not ``codecs[0]``.
    """
    if not codecs:
        raise ValueError("codecs must name at least one FourCC code")
    height, width = frame_size
    for codec in codecs:
        if len(codec) != 4:
            raise ValueError(f"codec must be a 4-character FourCC code, got {codec!r}")
        # OpenCV logs its own ERROR line for a codec it lacks; the fallback warning says it.
        log_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            writer = cv2.VideoWriter(
                path, cv2.VideoWriter_fourcc(*codec), float(fps), (width, height)
            )
        finally:
            cv2.utils.logging.setLogLevel(log_level)
        if writer.isOpened():
            return writer, codec
        writer.release()
    raise RuntimeError(f"OpenCV cannot write {path} with any of the codecs {list(codecs)}")


def draw_tracks(
    frame: np.ndarray, video_tracks: VideoTracks, frame_index: int, *, opacity: float = 0.5
) -> np.ndarray:
    """A copy of the BGR ``frame`` with the tracks present in ``frame_index`` drawn on it.

    Each track is labelled ``<class name> <n>``, ``n`` its position in ``video_tracks.tracks``
    (1, 2, ...: the same number in every frame; the track ids a stitcher assigns run into the
    thousands), on the point of its mask farthest from the mask's border, on a box of the
    track's colour with black or white ink (whichever contrasts), at a size that follows the
    frame; a label that would cover an earlier one moves below it.
    """
    image = frame.copy()
    labels = []
    for number, track in enumerate(video_tracks.tracks, 1):
        x, y, width, height = track.bbox(frame_index)
        if width == 0 or height == 0:
            continue
        # work inside the mask's box: a full 720p frame per track costs ~10x more
        mask = track.mask(frame_index)[y : y + height, x : x + width].astype(bool)
        region = image[y : y + height, x : x + width]
        colour = track_colour(track.track_id)
        blended = (1.0 - opacity) * region[mask] + opacity * np.array(colour, dtype=np.float32)
        region[mask] = blended.astype(np.uint8)
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y)
        )
        cv2.drawContours(image, contours, -1, colour, 1)
        inside = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)
        row, column = np.unravel_index(int(inside.argmax()), inside.shape)
        labels.append((number, track, x + column - 1, y + row - 1))
    names = video_tracks.category_names or {}
    scale = max(0.35, image.shape[0] / 900)
    thickness = max(1, round(scale * 2))
    placed = []
    for number, track, centre_x, centre_y in labels:  # after all masks: no mask covers a label
        category = track.category_id
        name = names.get(category, "" if category is None else f"class {category}")
        text = f"{name} {number}".strip()
        (text_width, text_height), baseline = cv2.getTextSize(
            text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness
        )
        box_width, box_height = text_width + 4, text_height + baseline + 4
        left = int(np.clip(centre_x - box_width // 2, 0, max(0, image.shape[1] - box_width)))
        top = _free_row(
            placed, left, box_width, box_height, image.shape[0], centre_y - box_height // 2
        )
        placed.append((left, top, left + box_width, top + box_height))
        colour = track_colour(track.track_id)
        cv2.rectangle(image, (left, top), (left + box_width, top + box_height), colour, cv2.FILLED)
        blue, green, red = colour  # dark text on a light box, light on a dark one
        ink = (0, 0, 0) if 0.114 * blue + 0.587 * green + 0.299 * red > 140 else (255, 255, 255)
        cv2.putText(
            image,
            text,
            (left + 2, top + text_height + 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            ink,
            thickness,
            cv2.LINE_AA,
        )
    return image


def _free_row(placed, left, width, height, frame_height, wanted_top):
    """The top of a label box nearest ``wanted_top`` (inside the frame) that covers none of the
    ``placed`` boxes ``(left, top, right, bottom)``: just above or below one of them; the
    wanted row itself if it is free or nothing is."""

    def fits(top):
        return 0 <= top <= frame_height - height and not any(
            left < right and box_left < left + width and top < bottom and box_top < top + height
            for box_left, box_top, right, bottom in placed
        )

    wanted_top = int(np.clip(wanted_top, 0, max(0, frame_height - height)))
    candidates = [wanted_top] + [
        edge for _, box_top, _, bottom in placed for edge in (bottom + 1, box_top - height - 1)
    ]
    free = [top for top in candidates if fits(top)]
    return min(free, key=lambda top: abs(top - wanted_top)) if free else wanted_top


def write_overlay_video(
    path: Union[str, os.PathLike],
    frames: Union[str, os.PathLike, np.ndarray, FrameSource],
    video_tracks: VideoTracks,
    *,
    fps: Optional[float] = None,
    codecs: Sequence[str] = DEFAULT_CODECS,
    opacity: float = 0.5,
) -> str:
    """Draw ``video_tracks`` on ``frames`` and write the video atomically.

    Args:
        frames: anything :func:`stemseg_fast.io.video.open_video` takes (a frame source,
            a video path, a folder of frames, an array [T, H, W, 3] uint8 BGR).
        fps (float or None): default ``video_tracks.fps``, then the source's, then 30.
    Returns:
        the codec used (str).
    """
    source = open_video(frames)
    if tuple(source.frame_size) != video_tracks.frame_size:
        raise ValueError(
            f"video {video_tracks.name!r}: tracks are {list(video_tracks.frame_size)} (h, w) but "
            f"the frames of {source.name!r} are {list(source.frame_size)}"
        )
    fps = next((value for value in (fps, video_tracks.fps, source.fps) if value), DEFAULT_FPS)
    with atomic_output(path) as temporary:
        writer, codec = open_video_writer(temporary, fps, video_tracks.frame_size, codecs)
        if codec != codecs[0]:
            # One message per run (the warnings filter shows a repeated message once).
            warnings.warn(
                f"video codec {codecs[0]!r} is not available in this OpenCV build; "
                f"overlays are written with {codec!r}",
                RuntimeWarning,
            )
        drawn = 0
        try:
            # The frame count is what the stream yields (a container may misstate it).
            for index, frame in enumerate(source):
                if index == video_tracks.num_frames:
                    raise ValueError(
                        f"video {video_tracks.name!r}: tracks cover "
                        f"{video_tracks.num_frames} frames but {source.name!r} has "
                        f"more"
                    )
                writer.write(draw_tracks(frame, video_tracks, index, opacity=opacity))
                drawn += 1
        finally:
            writer.release()
        if drawn != video_tracks.num_frames:
            raise ValueError(
                f"video {video_tracks.name!r}: tracks cover "
                f"{video_tracks.num_frames} frames but {source.name!r} has {drawn}"
            )
    return codec
