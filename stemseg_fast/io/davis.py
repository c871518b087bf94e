"""DAVIS (unsupervised) results: one indexed PNG per frame, ``<out_dir>/<sequence>/00000.png``,
with the DAVIS palette (the PASCAL VOC colour map, official ``utils/vis.py::create_color_map``).

Pixel value ``n + 1`` is the track at position ``n`` of ``VideoTracks.tracks`` (order it with
:func:`stemseg_fast.inference.selection.davis.select_davis_tracks`); 0 is background; where masks
overlap the later track wins (official ``DavisOutputGenerator``).

OpenCV cannot write palette PNGs, so this module uses Pillow.
"""

import os
import re
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from .files import PathLike, UnsafeOutputError, atomic_output_dir, output_path

if TYPE_CHECKING:  # tracks.py imports io.rle: only the checker reads this import
    from stemseg_fast.tracks import VideoTracks

_DAVIS_FRAME_NAME = re.compile(r"^\d{5}\.png$")


def davis_palette(num_colours: int = 256) -> np.ndarray:
    """``np.ndarray[num_colours, 3]`` uint8 RGB: the PASCAL VOC / DAVIS colour map (index bits
    spread over the high bits of R, G, B)."""
    palette = np.zeros((num_colours, 3), dtype=np.uint8)
    for index in range(num_colours):
        code, red, green, blue = index, 0, 0, 0
        for bit in range(8):
            red |= ((code >> 0) & 1) << (7 - bit)
            green |= ((code >> 1) & 1) << (7 - bit)
            blue |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        palette[index] = red, green, blue
    return palette


DAVIS_PALETTE = davis_palette()


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("DAVIS palette PNGs need Pillow: pip install pillow") from None
    return Image


def _ownership_marker(sequence_dir):
    """The empty file beside a sequence folder that says this module wrote the folder (beside,
    not inside: DAVIS tools list a sequence folder's files)."""
    parent, sequence = os.path.split(os.path.abspath(sequence_dir))
    return os.path.join(parent, f".{sequence}.stemseg-fast")


def is_davis_sequence_folder(path: PathLike) -> bool:
    """Whether ``path`` is a DAVIS sequence folder this module wrote (its marker beside it, and
    nothing but frame PNGs ``00000.png`` ... inside): the only kind of existing folder
    :func:`write_davis_pngs` replaces."""
    return (
        os.path.isdir(path)
        and not os.path.islink(path)
        and os.path.isfile(_ownership_marker(path))
        and all(
            _DAVIS_FRAME_NAME.match(entry) and os.path.isfile(os.path.join(path, entry))
            for entry in os.listdir(path)
        )
    )


def davis_sequence_folder(out_dir: PathLike, sequence: str) -> str:
    """``<out_dir>/<sequence>``, the sequence name checked to be one folder name; raises
    :class:`stemseg_fast.io.files.UnsafeOutputError` if it is not, or if a folder is there that
    this module did not write (so it is not ours to replace)."""
    path = output_path(out_dir, sequence, what="DAVIS sequence name")
    if os.path.lexists(path) and not is_davis_sequence_folder(path):
        raise UnsafeOutputError(
            f"{path} already exists and was not written by stemseg-fast; "
            f"move it away or choose another output folder"
        )
    return path


def write_davis_pngs(
    out_dir: PathLike, video_tracks: "VideoTracks", *, sequence: Optional[str] = None
) -> str:
    """Write ``<out_dir>/<sequence>/%05d.png`` for every frame of the video.

    The sequence folder is written whole or not at all (built beside, then moved in place), and
    an empty ``.<sequence>.stemseg-fast`` file beside it marks it as this tool's; an existing
    folder there is replaced only if it carries that mark and holds nothing but frame PNGs.

    Args:
        sequence (str or None): folder name (one path component), default
            ``video_tracks.name``.
    Returns:
        the sequence folder.
    """
    if len(video_tracks.tracks) > 255:
        raise ValueError(
            f"video {video_tracks.name!r} has {len(video_tracks.tracks)} tracks; "
            f"8-bit DAVIS PNGs hold at most 255"
        )
    image_module = _pillow()
    sequence = video_tracks.name if sequence is None else sequence
    sequence_dir = davis_sequence_folder(out_dir, sequence)
    palette = DAVIS_PALETTE.flatten().tolist()
    with atomic_output_dir(sequence_dir, replaceable=is_davis_sequence_folder) as temporary:
        for frame in range(video_tracks.num_frames):
            image = image_module.fromarray(video_tracks.label_map(frame).astype(np.uint8))
            image.putpalette(palette)  # turns the grey image into an indexed one
            image.save(os.path.join(temporary, f"{frame:05d}.png"))
    with open(_ownership_marker(sequence_dir), "w", encoding="ascii"):
        pass
    return sequence_dir


def read_davis_png(path: PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """``(indices [H, W] uint8, palette [256, 3] uint8 RGB)`` of an indexed PNG."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"PNG {path} does not exist")
    image = _pillow().open(path)
    if image.mode != "P":
        raise ValueError(f"PNG {path} is not an indexed (palette) image, its mode is {image.mode}")
    palette = np.zeros((256, 3), dtype=np.uint8)
    colours = np.asarray(image.getpalette(), dtype=np.uint8).reshape(-1, 3)
    palette[: len(colours)] = colours[:256]
    return np.asarray(image), palette
