"""Video input: frame sources that stream one frame at a time, and the expansion of command-line
inputs (files, folders, globs, annotation files) into sources.

Every source yields frames as ``np.ndarray[H, W, 3]`` uint8 in **BGR** order, the order OpenCV
reads and the official network expects (``BGR_INPUT: True``, reference §1.1). Sources never
hold the whole video: a 10,000-frame video costs one decoded frame of memory at a time.

Sources:
    * :class:`VideoFileSource`: a video file read with OpenCV ``VideoCapture`` (fps and frame
      count from the container, size from the first decoded frame).
    * :class:`ImageFilesSource`: a list of image files, e.g. a folder of frames
      (:func:`folder_source`) or the ``file_names`` of a YouTube-VIS/OVIS annotation entry.
    * :class:`ArraySource`: an array or tensor ``[T, H, W, 3]`` uint8 (BGR; ``rgb=True`` for
      RGB data such as ``torchvision.io.read_video`` output), or a sequence of ``[H, W, 3]``
      frames.

Bad input ends in one error naming the thing at fault: :class:`FileNotFoundError` for a missing
path, :class:`VideoInputError` (a ``ValueError``) for everything else, raised when the problem
is met (a frame of another size is reported with its file or index when it is read).

Pre-processing (resize to MIN/MAX_DIM, pad to 32, mean subtraction) belongs to the model
package (``stemseg_fast.model.preprocessing.preprocess_clip`` takes these frames stacked as
``torch.from_numpy(np.stack(frames))``): the frames here are the untouched decoded images.
"""

import glob
import os
import re
import warnings
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from stemseg_fast.io.files import PathLike, UnsafeOutputError, check_output_name, read_json

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
_GLOB_CHARACTERS = re.compile(r"[*?\[]")
MAX_VIDEO_ID = 2**31 - 1  # the evaluation tools keep ids in 32-bit integers


class VideoInputError(ValueError):
    """An input video, frame folder, frame file or array that cannot be used."""


class VideoLengthWarning(UserWarning):
    """A video file whose stream ends before (or after) the frame count its container
    announces."""


def _natural_key(path):
    """Sort key comparing digit runs as numbers: ``frame_2.jpg`` before ``frame_10.jpg``.
    Zero-padded names (YouTube-VIS ``00005.jpg``, DAVIS) sort the same either way."""
    name = os.path.basename(path)
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _has_extension(path, extensions):
    return os.path.splitext(path)[1].lower() in extensions


def _size_mismatch(where, frame, frame_size):
    height, width = frame.shape[:2]
    return VideoInputError(
        f"{where} is {width}x{height}, but the video's frames are "
        f"{frame_size[1]}x{frame_size[0]} (width x height): all frames must have one size"
    )


class FrameSource:
    """A video as a stream of BGR uint8 frames.

    Attributes:
        name (str): used for output file and folder names.
        video_id (int or None): the dataset id (YouTube-VIS/OVIS ``videos[*].id``) if known.
        fps (float or None): frames per second if known (video files; otherwise as given).

    Properties ``num_frames`` and ``frame_size`` (``(height, width)``) are read lazily; iterate
    the source (``for frame in source``) to stream frames, any number of times. ``num_frames``
    is what the source knows before it is read: exact for frame files and arrays, a video
    container's announcement (None if it has none) for video files, None for live streams.
    """

    def __init__(
        self, name: str, *, video_id: Optional[int] = None, fps: Optional[float] = None
    ) -> None:
        self.name = name
        self.video_id = video_id
        self.fps = fps

    @property
    def num_frames(self) -> Optional[int]:
        raise NotImplementedError

    @property
    def frame_size(self) -> Tuple[int, int]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class VideoFileSource(FrameSource):
    """A video file decoded with OpenCV.

    ``num_frames`` is the count the container announces (``CAP_PROP_FRAME_COUNT``), or None when
    it has none; real files often misstate it. Iteration yields every frame that decodes and
    stops at the first that does not (the end of a truncated file, or a damaged frame), with one
    :class:`VideoLengthWarning` when that is before the announced count: inference uses what the
    stream yields, never the announced count.
    """

    def __init__(
        self, path: PathLike, *, name: Optional[str] = None, video_id: Optional[int] = None
    ) -> None:
        if not os.path.exists(path):
            raise FileNotFoundError(f"video file {path} does not exist")
        if os.path.isdir(path):
            raise VideoInputError(f"video file {path} is a folder; use folder_source for frames")
        if not os.path.isfile(path):  # a FIFO or device would block the decoder forever
            raise VideoInputError(f"video file {path} is not a regular file")
        stem = os.path.splitext(os.path.basename(path))[0]
        super().__init__(name if name is not None else stem, video_id=video_id)
        self.path = path
        self._num_frames = None
        self._frame_size = None
        self._probed = False

    def _open(self):
        capture = cv2.VideoCapture(self.path)
        if not capture.isOpened():
            capture.release()
            raise VideoInputError(
                f"video file {self.path}: OpenCV cannot open it (not a video, or a codec this "
                f"OpenCV build lacks)"
            )
        return capture

    def _probe(self):
        if self._probed:
            return
        capture = self._open()
        try:
            decoded, first = capture.read()
            if not decoded:
                raise VideoInputError(
                    f"video file {self.path}: OpenCV cannot decode its first frame (corrupt, "
                    f"empty or an unsupported codec)"
                )
            self._frame_size = first.shape[:2]
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps > 0 else None
            announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            self._num_frames = announced if announced > 0 else None
        finally:
            capture.release()
        self._probed = True

    @property
    def num_frames(self) -> Optional[int]:
        self._probe()
        return self._num_frames

    @property
    def frame_size(self) -> Tuple[int, int]:
        self._probe()
        return self._frame_size

    def __iter__(self) -> Iterator[np.ndarray]:
        self._probe()
        capture = self._open()
        index = 0
        try:
            while True:
                decoded, frame = capture.read()
                if not decoded:
                    break
                if frame.shape[:2] != self._frame_size:
                    raise _size_mismatch(
                        f"frame {index} of video file {self.path}", frame, self._frame_size
                    )
                index += 1
                yield frame
        finally:
            capture.release()
        if self._num_frames is not None and index != self._num_frames:
            warnings.warn(
                f"video file {self.path}: its container announces {self._num_frames} "
                f"frames, {index} decoded; using the {index}",
                VideoLengthWarning,
            )


class ImageFilesSource(FrameSource):
    """Frames stored as image files, in the order given."""

    def __init__(
        self,
        paths: Sequence[PathLike],
        *,
        name: str,
        video_id: Optional[int] = None,
        fps: Optional[float] = None,
    ) -> None:
        paths = [os.fspath(path) for path in paths]
        if not paths:
            raise VideoInputError(f"video {name!r} has no frame files")
        super().__init__(name, video_id=video_id, fps=fps)
        self.paths = paths
        self._frame_size = None

    @staticmethod
    def _read(path):
        if not os.path.exists(path):
            raise FileNotFoundError(f"frame file {path} does not exist")
        if not os.path.isfile(path):
            raise VideoInputError(f"frame file {path} is not a regular file")
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            raise VideoInputError(f"frame file {path}: OpenCV cannot decode it as an image")
        return frame

    @property
    def num_frames(self) -> Optional[int]:
        return len(self.paths)

    @property
    def frame_size(self) -> Tuple[int, int]:
        if self._frame_size is None:
            self._frame_size = self._read(self.paths[0]).shape[:2]
        return self._frame_size

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            frame = self._read(path)
            if self._frame_size is None:
                self._frame_size = frame.shape[:2]
            elif frame.shape[:2] != self._frame_size:
                raise _size_mismatch(f"frame file {path}", frame, self._frame_size)
            yield frame


def folder_source(
    folder: PathLike,
    *,
    name: Optional[str] = None,
    video_id: Optional[int] = None,
    fps: Optional[float] = None,
) -> ImageFilesSource:
    """A folder of frames: its image files (``IMAGE_EXTENSIONS``, any case) in natural order."""
    if not os.path.exists(folder):
        raise FileNotFoundError(f"frame folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise VideoInputError(f"frame folder {folder} is not a folder")
    paths = sorted(
        (
            os.path.join(folder, entry)
            for entry in os.listdir(folder)
            if _has_extension(entry, IMAGE_EXTENSIONS)
        ),
        key=_natural_key,
    )
    if not paths:
        raise VideoInputError(
            f"frame folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})"
        )
    # abspath: "." or "frames/" must name the folder itself, not "." or "".
    name = name if name is not None else os.path.basename(os.path.abspath(folder))
    return ImageFilesSource(paths, name=name, video_id=video_id, fps=fps)


class ArraySource(FrameSource):
    """Frames held in memory: ``np.ndarray`` or ``torch.Tensor`` ``[T, H, W, 3]`` uint8, or a
    sequence of ``[H, W, 3]`` uint8 frames (checked one by one as they are yielded).

    Args:
        rgb (bool): the data is RGB (PIL, imageio, torchvision); frames are flipped to BGR as
            they are yielded. Default False: the data is BGR like OpenCV's.
    """

    def __init__(
        self,
        frames: Union[np.ndarray, torch.Tensor, Sequence[np.ndarray]],
        *,
        rgb: bool = False,
        name: str = "array",
        video_id: Optional[int] = None,
        fps: Optional[float] = None,
    ) -> None:
        super().__init__(name, video_id=video_id, fps=fps)
        if isinstance(frames, (np.ndarray, torch.Tensor)):
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise VideoInputError(
                    f"frames must have shape [T, H, W, 3], got {list(frames.shape)}"
                )
            _check_uint8(frames, "frames")
            if frames.shape[0] == 0:
                raise VideoInputError("frames must hold at least one frame, got T = 0")
        elif len(frames) == 0:
            raise VideoInputError("frames must hold at least one frame, got an empty sequence")
        self._frames = frames
        self.rgb = rgb
        self._frame_size = None

    @property
    def num_frames(self) -> Optional[int]:
        return len(self._frames)

    @property
    def frame_size(self) -> Tuple[int, int]:
        if self._frame_size is None:
            self._frame_size = tuple(self._frames[0].shape[:2])
        return self._frame_size

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self._frames)):
            frame = _checked_frame(self._frames[index], index, self.rgb)
            if frame.shape[:2] != self.frame_size:
                raise _size_mismatch(f"frame {index}", frame, self.frame_size)
            yield frame


class IterableSource(FrameSource):
    """Frames from an iterator or generator of ``[H, W, 3]`` uint8 frames whose length is not
    known (a live feed, frames produced as they come); it can be read once."""

    def __init__(
        self,
        frames: Iterable[np.ndarray],
        *,
        rgb: bool = False,
        name: str = "stream",
        video_id: Optional[int] = None,
        fps: Optional[float] = None,
    ) -> None:
        super().__init__(name, video_id=video_id, fps=fps)
        self._iterator = iter(frames)
        self._first = None
        self.rgb = rgb
        self._started = False

    @property
    def num_frames(self) -> Optional[int]:
        return None

    def _peek(self):
        if self._first is None:
            try:
                self._first = _checked_frame(next(self._iterator), 0, self.rgb)
            except StopIteration:
                raise VideoInputError(f"video {self.name!r}: the stream has no frames") from None
        return self._first

    @property
    def frame_size(self) -> Tuple[int, int]:
        return self._peek().shape[:2]

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise VideoInputError(f"video {self.name!r} is a stream: it can be read once")
        self._started = True
        first = self._peek()
        yield first
        for index, frame in enumerate(self._iterator, start=1):
            frame = _checked_frame(frame, index, self.rgb)
            if frame.shape[:2] != first.shape[:2]:
                raise _size_mismatch(f"frame {index}", frame, first.shape[:2])
            yield frame


class CaptureSource(FrameSource):
    """A live source OpenCV opens: a camera (its index) or a stream URL (``rtsp://``,
    ``http://``, ...). Its length is unknown (``num_frames`` None); it ends when OpenCV reads
    no more frames (a closed stream, an unplugged camera)."""

    def __init__(
        self,
        device_or_url: Union[int, str],
        *,
        name: Optional[str] = None,
        video_id: Optional[int] = None,
        fps: Optional[float] = None,
    ) -> None:
        if isinstance(device_or_url, bool) or not isinstance(device_or_url, (int, str)):
            raise TypeError(
                f"device_or_url must be a camera index or a URL, got {type(device_or_url).__name__}"
            )
        self.target = device_or_url
        if name is None:
            name = (
                f"camera{device_or_url}"
                if isinstance(device_or_url, int)
                else _url_stem(device_or_url)
            )
        super().__init__(name, video_id=video_id, fps=fps)
        self._capture = None
        self._first = None

    def _open(self):
        capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            what = (
                f"camera {self.target}" if isinstance(self.target, int) else f"stream {self.target}"
            )
            raise VideoInputError(f"{what}: OpenCV cannot open it")
        return capture

    def _probe(self):
        """Open the source and read its first frame, kept for the first iteration (a live
        source cannot be rewound)."""
        if self._first is not None:
            return
        self._capture = self._open()
        decoded, first = self._capture.read()
        if not decoded:
            self._capture.release()
            self._capture = None
            raise VideoInputError(f"{self.target}: OpenCV opened it but read no frame")
        self._first = first
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        if self.fps is None and fps > 0:
            self.fps = float(fps)

    @property
    def num_frames(self) -> Optional[int]:
        return None

    @property
    def frame_size(self) -> Tuple[int, int]:
        self._probe()
        return self._first.shape[:2]

    def __iter__(self) -> Iterator[np.ndarray]:
        self._probe()
        capture, first = self._capture or self._open(), self._first
        self._capture = None  # a later iteration reopens the source
        try:
            if first is None:
                decoded, first = capture.read()
                if not decoded:
                    return
            self._first = None
            yield first
            while True:
                decoded, frame = capture.read()
                if not decoded:
                    return
                if frame.shape[:2] != first.shape[:2]:
                    raise _size_mismatch(f"a frame of {self.target}", frame, first.shape[:2])
                yield frame
        finally:
            capture.release()


def _url_stem(url):
    """A file-name-safe stem of a URL's last path component (``rtsp://cam/live`` -> live)."""
    last = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(last)[0]).strip("._")
    return stem or "stream"


def _checked_frame(frame, index, rgb):
    """An in-memory frame as a contiguous BGR ``[H, W, 3]`` uint8 array, or one clear error."""
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().cpu().numpy()
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise VideoInputError(f"frame {index} must have shape [H, W, 3], got {list(frame.shape)}")
    _check_uint8(frame, f"frame {index}")
    return np.ascontiguousarray(frame[..., ::-1] if rgb else frame)


def _check_uint8(frames, what):
    dtype = frames.dtype
    if dtype != (torch.uint8 if isinstance(frames, torch.Tensor) else np.uint8):
        raise VideoInputError(f"{what} must be uint8 (0..255), got {dtype}")


def open_video(
    source: object, *, rgb: bool = False, name: Optional[str] = None, fps: Optional[float] = None
) -> FrameSource:
    """One frame source from a video file path, a folder of frames, an array/tensor, a
    sequence of frames, an iterable of frames of unknown length, a camera index or a stream URL;
    a :class:`FrameSource` is returned as it is.

    ``rgb`` applies to in-memory frames only (files are decoded by OpenCV as BGR); ``fps`` sets
    the rate of sources that have none (folders, arrays).
    """
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, int) and not isinstance(source, bool):
        return CaptureSource(source, name=name, fps=fps)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if "://" in path:
            return CaptureSource(path, name=name, fps=fps)
        if os.path.isdir(path):
            return folder_source(path, name=name, fps=fps)
        return VideoFileSource(path, name=name)
    if isinstance(source, (np.ndarray, torch.Tensor)) or hasattr(source, "__len__"):
        return ArraySource(source, rgb=rgb, name=name if name is not None else "array", fps=fps)
    if hasattr(source, "__iter__"):
        return IterableSource(source, rgb=rgb, name=name if name is not None else "stream", fps=fps)
    raise TypeError(
        f"video must be a path, a camera index, a URL, an array or an iterable of "
        f"frames, got {type(source).__name__}"
    )


def _folder_videos(folder):
    """The sources a folder stands for: itself if it holds frames, else each video file and
    each sub-folder of frames in it (the YouTube-VIS ``JPEGImages/`` layout)."""
    entries = sorted(os.listdir(folder), key=_natural_key)
    if any(_has_extension(entry, IMAGE_EXTENSIONS) for entry in entries):
        return [folder_source(folder)]
    sources = []
    for entry in entries:
        path = os.path.join(folder, entry)
        if os.path.isdir(path):
            if any(_has_extension(inner, IMAGE_EXTENSIONS) for inner in os.listdir(path)):
                sources.append(folder_source(path))
        elif _has_extension(entry, VIDEO_EXTENSIONS):
            sources.append(VideoFileSource(path))
    if not sources:
        raise VideoInputError(
            f"folder {folder} holds no frames, video files ({', '.join(VIDEO_EXTENSIONS)}) or "
            f"sub-folders of frames"
        )
    return sources


def annotation_videos(
    annotation_file: PathLike, image_root: Optional[PathLike] = None
) -> List[ImageFilesSource]:
    """The videos of a YouTube-VIS/OVIS annotation (or results-free test) file: one
    :class:`ImageFilesSource` per ``videos[*]`` entry, frames ``image_root/file_names[i]``,
    named after the folder of its first frame, ``video_id`` from the entry's ``id``.

    ``image_root`` defaults to ``JPEGImages/`` beside the file if that exists (the YouTube-VIS
    layout), else the file's folder.
    """
    try:
        dataset = read_json(annotation_file, "annotation file")
    except ValueError as error:
        raise VideoInputError(str(error)) from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("videos"), list):
        raise VideoInputError(
            f"annotation file {annotation_file} has no 'videos' list (expected the YouTube-VIS/"
            f"OVIS format)"
        )
    if image_root is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(annotation_file)), "JPEGImages")
        image_root = beside if os.path.isdir(beside) else os.path.dirname(annotation_file)
    sources = []
    for position, video in enumerate(dataset["videos"]):
        where = f"annotation file {annotation_file}: videos[{position}]"
        file_names = video.get("file_names") if isinstance(video, dict) else None
        if not isinstance(file_names, list) or not file_names or "id" not in video:
            raise VideoInputError(f"{where} needs 'id' and a non-empty 'file_names' list")
        video_id = video["id"]
        if (
            isinstance(video_id, bool)
            or not isinstance(video_id, int)
            or not 0 <= video_id <= MAX_VIDEO_ID
        ):
            raise VideoInputError(
                f"{where}: 'id' must be an integer in [0, {MAX_VIDEO_ID}], got {video_id!r}"
            )
        for index, file_name in enumerate(file_names):
            _check_relative_frame_path(file_name, f"{where}.file_names[{index}]")
        # The folder of the first frame names the outputs (DAVIS folders, overlay videos).
        name = os.path.dirname(file_names[0]) or str(video_id)
        try:
            check_output_name(name, f"{where}: the folder of file_names[0],")
        except UnsafeOutputError as error:
            raise VideoInputError(str(error)) from None
        sources.append(
            ImageFilesSource(
                [os.path.join(image_root, f) for f in file_names], name=name, video_id=video_id
            )
        )
    return sources


def _check_relative_frame_path(file_name, where):
    """Frames of an annotation file lie below its image root: no absolute path, no ``..``."""
    if not isinstance(file_name, str) or not file_name:
        raise VideoInputError(f"{where} must be a non-empty string, got {file_name!r}")
    parts = file_name.replace("\\", "/").split("/")
    if os.path.isabs(file_name) or file_name.startswith("\\") or ".." in parts or "\0" in file_name:
        raise VideoInputError(
            f"{where} {file_name!r} must be a path relative to the image root "
            f"without '..' (frames outside the image root are not read)"
        )


def expand_inputs(
    paths: Union[PathLike, Sequence[PathLike]], *, image_root: Optional[PathLike] = None
) -> List[FrameSource]:
    """The videos named by command-line inputs, in order.

    Each input is a video file, a folder of frames, a folder of videos (video files and/or
    sub-folders of frames), a glob pattern (quote it) over any of these, a YouTube-VIS/OVIS
    annotation file (``.json``; frames under ``image_root``, see :func:`annotation_videos`), or
    a stream URL (``rtsp://``, ``http://``: read until it ends).

    Returns:
        list[FrameSource], names unique (they name the outputs).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    sources = []
    for raw in paths:
        path = os.fspath(raw)
        if not os.path.exists(path) and _GLOB_CHARACTERS.search(path):
            matches = sorted(glob.glob(path), key=_natural_key)
            if not matches:
                raise FileNotFoundError(f"input pattern {path} matches nothing")
            sources += expand_inputs(matches, image_root=image_root)
        elif os.path.isdir(path):
            sources += _folder_videos(path)
        elif _has_extension(path, (".json",)):
            sources += annotation_videos(path, image_root)
        elif not os.path.exists(path) and path.isdigit():
            raise VideoInputError(
                f"input {path} names a camera, which never ends: read live "
                f"sources with --stream (stemseg-fast infer --stream {path} "
                f"...)"
            )
        elif "://" in path:
            sources.append(CaptureSource(path))
        else:
            sources.append(VideoFileSource(path))
    seen = {}
    for source in sources:
        if source.name in seen:
            raise VideoInputError(
                f"two inputs share the name {source.name!r} ({seen[source.name]!r} and "
                f"{source!r}); their outputs would overwrite each other: rename one"
            )
        seen[source.name] = source
    return sources


def assign_video_ids(sources: Sequence[FrameSource], ids_from: Optional[PathLike] = None) -> int:
    """Dataset ids for inputs that have none: from ``--ids-from`` (matched by name, the folder
    of an entry's first frame), else their position (1, 2, ...). Returns how many were numbered
    by position (a benchmark's server scores by id, so the summary says so)."""
    if ids_from is not None:
        ids = {}
        for video in annotation_videos(ids_from):
            if video.name in ids:
                raise VideoInputError(
                    f"--ids-from {ids_from}: two videos are named {video.name!r} "
                    f"(ids {ids[video.name]} and {video.video_id})"
                )
            ids[video.name] = video.video_id
        for source in sources:
            if source.video_id is None:
                if source.name not in ids:
                    raise VideoInputError(
                        f"--ids-from {ids_from}: no video named {source.name!r} (videos are "
                        f"named by the folder of their first frame)"
                    )
                source.video_id = ids[source.name]
    numbered = 0
    for position, source in enumerate(sources):
        if source.video_id is None:
            source.video_id = position + 1
            numbered += 1
    owners = {}
    for source in sources:
        if source.video_id in owners:
            raise VideoInputError(
                f"inputs {owners[source.video_id]!r} and {source.name!r} both get "
                f"video_id {source.video_id}; give every input its dataset id "
                f"(--ids-from)"
            )
        owners[source.video_id] = source.name
    return numbered
