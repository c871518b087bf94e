"""One video through the network, clustering and stitching, streamed clip by clip (official
``InferenceModel.forward`` + ``TrackGenerator`` + ``OnlineChainer.process`` + the output
generators' mask path; reference §4).

Order of work, for clips C_0 .. C_{n-1} of the official schedule
(:func:`~stemseg_fast.inference.clips.clip_schedule`), planned as the frames arrive
(:func:`~stemseg_fast.inference.clips.streamed_clip_schedule`): the video's length is what its
stream yields, learnt at its end, never a container's announced count:

1. **Backbone once per frame.** Before clip j's heads, the frames of C_j not seen yet are decoded
   (ahead, by a reader thread that on CUDA also copies them into pinned memory, so their
   uploads are not waited for), pre-processed (resize rule, mean, pad to 32) and pushed through
   the backbone as one batch (at most T frames). Features live in a cache keyed by frame index
   and are dropped as soon as the last clip containing the frame has run its heads (official
   ``subseq_deps``); a repeated frame of a short, left-padded clip is computed once.
2. **Heads once per clip** (bf16 autocast on GPU by default). Semantic logits of every
   occurrence of a frame enter its running sum (official: duplicates included), kept at stride 4
   on the device; the embeddings, precisions (10 · exp(r), applied before any upsampling) and
   seediness of a clip keep the **last** occurrence of a repeated frame
   (:func:`~stemseg_fast.inference.clips.clip_positions`).
3. **A frame's semantics are final** once the last clip containing it has run its heads. Its
   foreground then is ``sigmoid(avg fg logit) > threshold`` (``foreground_source="semantic"``)
   or ``avg seediness > threshold`` (``"seediness"``, averaged over the clips containing it, one
   entry per clip); the running sums are freed.
4. **A clip is clustered** once all its frames are final (one or two clips after its heads):
   embeddings, precisions and seediness upsampled x4 trilinearly in space (time scale 1) when the
   preset clusters at full resolution (official ``--resize_embeddings``), then
   :func:`~stemseg_fast.kernels.greedy_cluster.greedy_cluster` on the clip's foreground voxels
   (reading the channel-first volumes in place, the free dims' precision a constant),
   :class:`~stemseg_fast.inference.stitching.ClipStitcher` against the previous clip.
   Heads and clustering are the two calls of :class:`~stemseg_fast.inference.clip_step.
   ClipSteps`: with ``cuda_graphs`` each is a CUDA graph replayed for every clip of its shape.
5. **Frames the stitcher hands back are final**: per track present, the official mask path
   and one COCO RLE per track and frame (:mod:`~stemseg_fast.inference.masks`; the masks of a
   clip's frames are queued together and their RLEs collected once the next clip's network
   work is queued, streams excepted); per-track class-logit sums (YouTube-VIS rule) and argmax
   votes (KITTI-MOTS rule) at clustering resolution. :meth:`VideoRun.run` returns it all as a
   :class:`~stemseg_fast.inference.prediction.VideoPrediction`.

What is held at any time: features of at most ~2T frames, semantic sums of the frames of at most
two clips, the outputs of at most two clips awaiting clustering, the stitcher's previous clip,
on a GPU the masks of one clip's final frames awaiting their RLE; plus per-track RLE dicts and
counters that grow with the video. ``diagnostics`` of the result records the peak number of
cached frames and clips.

Semantics at full resolution: the official code upsamples each clip's logits x4 and averages;
here the stride-4 average is upsampled when the frame is final (linear maps commute, equal up to
float rounding), which keeps [C, H/4, W/4] per frame on the device instead of [C, H, W].
Seediness averaged for the foreground likewise.

Where the host waits for the device (each is a copy to the host whose size or content the next
step depends on, marked with :func:`~stemseg_fast.inference.host_waits.expected_host_wait` for
the GPU sync audit; everything else is queued without waiting, and index tensors made on the
host go over with ``non_blocking``, cached per clip shape where they repeat):

* clustering, per clip: the number of clusters (the stitcher's label bound), the joint
  histogram the Hungarian matching reads on the host, and the highest stored track id
  (:class:`~stemseg_fast.inference.stitching.ClipStitcher`), plus whatever the clustering
  kernel's own checks read;
* outputs, per clip: one table of which tracks each final frame holds (it chooses the masks to
  make), then the run boundaries of the clip's masks: their count per
  :data:`~stemseg_fast.inference.masks.ENCODE_BATCH` masks, and one wait for all of them,
  copied into pinned memory (:func:`~stemseg_fast.io.rle.find_mask_runs`, on a side stream,
  after the next clip's network work is queued): the place where results leave the device;
  streams also read each track's category per frame;
* at the end of the video: the stage timer's last event and the per-track statistics;
* with ``cuda_graphs``, once per clip shape and predictor: the capture of its graphs.

Timings (seconds, every stage counted; on CUDA from events at the stage boundaries, read at the
end of the video, :class:`StageTimer`): ``decode``, ``preprocess``, ``backbone``, ``heads``,
``clustering`` (clustering + stitching + foreground), ``outputs`` (mask path, RLE encoding, class
statistics). The official tool leaves the output generation out of its timers (§4.5).
"""

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Optional

import numpy as np
import torch
import torch.nn.functional as F

from stemseg_fast.model.embeddings import PRECISION_SCALE
from stemseg_fast.model.preprocessing import preprocess_clip, resized_size
from stemseg_fast.tracks import Track

from .clip_step import ClipSteps, network_autocast
from .clips import clip_positions, streamed_clip_schedule
from .host_waits import expected_host_wait
from .masks import EMBEDDING_STRIDE, ClipMaskEncoding, encode_clip_masks
from .prediction import VideoPrediction
from .prefetch import prefetched
from .stitching import ClipStitcher

STAGES = ("decode", "preprocess", "backbone", "heads", "clustering", "outputs")


_FRAME_RATE_ROWS = (
    ("decode", ("decode",)),
    ("model (preprocess + backbone + heads)", ("preprocess", "backbone", "heads")),
    ("clustering + stitching", ("clustering",)),
    ("outputs (masks, RLE, files)", ("outputs",)),
    ("overall", STAGES),
)


def frame_rate_table(frames: int, timings: Iterable[Mapping[str, float]]) -> str:
    """Frames per second of each group of :data:`STAGES` and overall, one line each, from
    ``frames`` and the per-video seconds per stage they took (``timings``, summed here)."""
    seconds = {}
    for video_timings in timings:
        for stage, value in video_timings.items():
            seconds[stage] = seconds.get(stage, 0.0) + value
    lines = []
    for label, stages in _FRAME_RATE_ROWS:
        total = sum(seconds.get(stage, 0.0) for stage in stages)
        fps = frames / total if total > 0 else float("inf")
        lines.append(f"  {label:<40} {fps:10.2f} fps  ({total:.2f} s)")
    return "\n".join(lines)


def pinned_frame(frame: np.ndarray) -> torch.Tensor:
    """A decoded [H, W, 3] uint8 frame copied into page-locked memory (by the reader thread,
    off the loop's time), so its upload to the device is a copy the host does not wait for.
    PyTorch's pinned allocator reuses the memory only once the upload has run."""
    pinned = torch.empty(frame.shape, dtype=torch.uint8, pin_memory=True)
    pinned.numpy()[...] = frame
    return pinned


@dataclass
class StreamedFrame:
    """One final frame of a stream.

    Attributes:
        index (int): frame number in the stream, from 0.
        tracks (list[Track]): the tracks present, numbered 1, 2, ... by first appearance, each
            with this frame's mask and its category so far.
        image (np.ndarray[H, W, 3] uint8 BGR or None): the decoded frame, when asked for.
    """

    index: int
    tracks: list
    image: Optional[np.ndarray] = None


class StageTimer:
    """Time per stage without waiting for the device.

    On CUDA each stage boundary records an event on the current stream; a stage is charged the
    time between its two events, so the stages partition the video's timeline and each is
    charged its own device work (or its host work, where the device idles). The events are read
    once the device has passed them: pairs already completed are folded into seconds as the
    video goes (``Event.query`` does not wait), which keeps memory flat on an endless stream,
    and :meth:`totals` waits for the last event only, at the end of the video, where results
    leave the device anyway. On the CPU it reads ``time.perf_counter``.
    """

    _FOLD_EVERY = 64  # pending event pairs; a clip records about six

    def __init__(self, device):
        self._seconds = dict.fromkeys(STAGES, 0.0)
        self._cuda = torch.device(device).type == "cuda"
        self._pending = []  # CUDA: (stage, start event, end event) not yet read
        self._last = self._mark()

    def _mark(self):
        if not self._cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def restart(self) -> None:
        """Start the next stage now: the time since the last boundary is charged to no stage."""
        self._last = self._mark()

    def charge(self, stage: str) -> None:
        """Charge ``stage`` the time since the last boundary."""
        now = self._mark()
        if self._cuda:
            self._pending.append((stage, self._last, now))
            if len(self._pending) >= self._FOLD_EVERY:
                self._fold(wait=False)
        else:
            self._seconds[stage] += now - self._last
        self._last = now

    def _fold(self, wait):
        if wait and self._pending:
            self._pending[-1][2].synchronize()
        while self._pending and self._pending[0][2].query():
            stage, start, end = self._pending.pop(0)
            self._seconds[stage] += start.elapsed_time(end) / 1e3

    def totals(self) -> dict:
        """Seconds per stage of :data:`STAGES` so far; on CUDA it waits for the last boundary."""
        self._fold(wait=True)
        return dict(self._seconds)


class _GrowingRows:
    """A [capacity, C] accumulator indexed by label + 1: row 0 takes the outliers (label -1),
    so every voxel can be added without first selecting the tracks' voxels (a selection's size
    is known only on the host). Grown by doubling as ids appear."""

    def __init__(self, columns, dtype, device):
        self.values = torch.zeros(1, columns, dtype=dtype, device=device)

    def reserve(self, highest_id):
        rows = highest_id + 2
        if rows > self.values.shape[0]:
            grown = self.values.new_zeros(max(rows, 2 * self.values.shape[0]), self.values.shape[1])
            grown[: self.values.shape[0]] = self.values
            self.values = grown

    def rows(self, track_ids):
        """[M, C] numpy rows of ``track_ids`` (zeros for ids never accumulated)."""
        if track_ids.numel():
            self.reserve(int(track_ids.max()))
        return self.values[track_ids.to(self.values.device) + 1].cpu().numpy()


class VideoRun:
    """Streams one video through the model, once: :meth:`run` returns its
    :class:`~stemseg_fast.inference.prediction.VideoPrediction`, :meth:`stream` yields its
    final frames as they come.

    Args:
        model: a :class:`~stemseg_fast.model.STEmSeg` (or a module with its ``backbone_features``,
            ``stack_clip`` and ``heads``), on ``device``, in eval mode.
        config: the :class:`~stemseg_fast.model.STEmSegConfig` (embedding mode, free-dim
            precision, ``inference`` constants).
        source: a :class:`~stemseg_fast.io.video.FrameSource`.
        device: where every tensor lives.
        backend: kernel backend for the clustering.
        autocast_dtype: dtype of the network's autocast region, or None for float32.
        progress: a tqdm bar (updated per decoded frame) or None.
        streaming: :meth:`stream` frames instead of collecting per-track results.
        keep_images: streams only: each :class:`StreamedFrame` carries its decoded image.
        steps: the heads and clustering calls (a :class:`~stemseg_fast.inference.clip_step.
            ClipSteps` of the same model, config, backend and autocast dtype, which a predictor
            keeps across videos for its CUDA graphs); default: direct calls.
    """

    def __init__(
        self,
        model,
        config,
        source,
        *,
        device,
        backend="auto",
        autocast_dtype=None,
        progress=None,
        streaming=False,
        keep_images=False,
        steps: Optional[ClipSteps] = None,
    ):
        self.model = model
        self.steps = steps or ClipSteps(
            model, config, backend=backend, autocast_dtype=autocast_dtype
        )
        self.config = config
        self.inference = config.inference
        self.source = source
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype
        self.progress = progress
        self.num_frames = None  # what the stream yields, known when it ends
        self.frame_size = tuple(source.frame_size)
        self.resized = resized_size(
            *self.frame_size, self.inference.min_dim, self.inference.max_dim
        )
        self.full_resolution = self.inference.cluster_at_full_resolution
        self.timer = StageTimer(self.device)
        self.diagnostics = defaultdict(int)
        self.rles = defaultdict(dict)  # track id -> frame -> COCO RLE
        self.class_logit_sums = None  # _GrowingRows [ids, C] float64, channel 0 background
        self.class_votes = None  # _GrowingRows [ids, C] int64 of per-voxel argmax labels
        self.streaming = streaming
        self.keep_images = keep_images  # streams: hand each decoded frame back with its tracks
        self._images = {}  # frame -> decoded image, until the frame is emitted
        self._frame_tracks = {}  # final frame -> ids of the tracks it holds, until emitted
        self._to_encode = []  # emitted frames of the current clip awaiting their masks
        self._encoding = None  # (frames, ClipMaskEncoding) of the last clip, until collected
        # CUDA: the RLE's waits and copies run here, so the next clip's work queued on the
        # current stream keeps the device busy meanwhile.
        self._side_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self._position_indices = {}  # a clip's positions -> their index tensor on the device
        self._emitted = []  # StreamedFrames of the current step
        self._live = {}  # stream: track id -> summed class logits of the frames seen
        self._display_numbers = {}  # stream: live track id -> its number (1, 2, ...)
        self._next_display_number = 0
        self.stitcher = ClipStitcher(
            iou_threshold=self.inference.stitch_iou_threshold, track_statistics=not streaming
        )
        self.semantic_sums, self.seediness_sums = {}, {}  # frame -> (running sum, count)
        self.class_logits, self.foreground = {}, {}  # final frames awaiting their clip
        self._decoded, self._stream_ended, self.frames_read = {}, False, 0
        self._started = False

    # -- stage 1: frames and backbone ------------------------------------------------------------

    def _has_frame(self, index):
        """Decode the stream up to frame ``index`` (kept until the backbone takes it); whether it
        exists. The length is learnt when the stream ends, not from the container."""
        while self.frames_read <= index and not self._stream_ended:
            try:
                self._decoded[self.frames_read] = next(self._frame_iterator)
            except StopIteration:
                self._stream_ended = True
                break
            if self.keep_images:
                decoded = self._decoded[self.frames_read]
                self._images[self.frames_read] = (
                    decoded.numpy() if isinstance(decoded, torch.Tensor) else decoded
                )
            self.frames_read += 1
            if self.progress is not None:
                self.progress.update(1)
        self.timer.charge("decode")
        return index < self.frames_read

    def _backbone(self, frame_indices, features):
        frames = [self._decoded.pop(index) for index in frame_indices]
        if self.device.type == "cuda":  # pinned frames (pinned_frame): uploads not waited for
            batch = torch.empty(
                (len(frames), *frames[0].shape), dtype=frames[0].dtype, device=self.device
            )
            for slot, frame in zip(batch, frames):
                slot.copy_(frame, non_blocking=True)
        else:
            batch = torch.from_numpy(np.stack(frames))
        images = preprocess_clip(batch, self.inference.min_dim, self.inference.max_dim).clip
        images = images.transpose(0, 1)  # [B, 3, H_pad, W_pad]
        self.timer.charge("preprocess")
        with network_autocast(self.device.type, self.autocast_dtype):
            levels = self.model.backbone_features(images)  # each [B, C, h, w]
        for offset, index in enumerate(frame_indices):
            # Views of the batch: the batch is freed once its last frame leaves the cache.
            features[index] = [level[offset : offset + 1] for level in levels]
        self.timer.charge("backbone")

    # -- stage 2/3: heads, per-frame semantics ---------------------------------------------------

    def _heads(self, clip, features):
        # Graph replays hand back the graph's own outputs: each is consumed into new tensors
        # below, before the next clip's replay overwrites it.
        output = self.steps.heads(*self.model.stack_clip([features[t] for t in clip]))
        frames, positions = clip_positions(clip)
        index = self._position_index(positions)
        embeddings = output.embeddings[0].float().index_select(1, index)  # [E, T', h, w]
        precisions = PRECISION_SCALE * torch.exp(
            output.log_precisions[0].float().index_select(1, index)
        )  # [E-F, T', h, w]
        seediness = output.seediness[0].float().index_select(1, index)  # [1, T', h, w]
        semantic = output.semantic_logits
        if semantic is not None:
            for position, frame in enumerate(clip):  # every occurrence, as the official average
                self._add(self.semantic_sums, frame, semantic[0, :, position].float())
        elif self.inference.foreground_source == "semantic":
            raise ValueError(
                "the preset takes the foreground from the semantic head "
                "(foreground_source='semantic'), but the model has none"
            )
        if self.inference.foreground_source == "seediness":
            for position, frame in enumerate(frames):
                self._add(self.seediness_sums, frame, seediness[0, position])
        self.timer.charge("heads")
        return frames, embeddings, precisions, seediness

    def _position_index(self, positions):
        """The clip's positions on the device, copied once per clip shape (a video has at
        most three: regular, end-aligned and left-padded)."""
        key = tuple(positions)
        if key not in self._position_indices:
            self._position_indices[key] = torch.tensor(positions).to(self.device, non_blocking=True)
        return self._position_indices[key]

    @staticmethod
    def _add(sums, frame, value):
        total, count = sums.get(frame, (0.0, 0))
        sums[frame] = (value + total, count + 1)

    def _upsample_frame(self, map_):
        """[C, h, w] stride-4 map -> clustering resolution (unchanged at stride 4)."""
        if not self.full_resolution:
            return map_
        return F.interpolate(
            map_[None], scale_factor=EMBEDDING_STRIDE, mode="bilinear", align_corners=False
        )[0]

    def _finalise_frame(self, frame):
        """Average the frame's semantics over its clips: foreground mask at clustering
        resolution, class logits (stride 4) kept until the frame's labels are final."""
        threshold = self.inference.foreground_threshold
        if frame in self.semantic_sums:
            total, count = self.semantic_sums.pop(frame)
            average = total / count  # [C + 1, h, w]
            if average.shape[0] > 2:
                # class logits (channel 0 background), then the class-agnostic fg logit
                self.class_logits[frame] = average[:-1]
                fg_probability = torch.sigmoid(self._upsample_frame(average[-1:]))[0]
            else:  # bg/fg logits only (official get_semseg_masks)
                fg_probability = torch.softmax(self._upsample_frame(average), dim=0)[1]
            if self.inference.foreground_source == "semantic":
                self.foreground[frame] = fg_probability > threshold
        if self.inference.foreground_source == "seediness":
            total, count = self.seediness_sums.pop(frame)
            self.foreground[frame] = self._upsample_frame((total / count)[None])[0] > threshold

    # -- stage 4: clustering and stitching -------------------------------------------------------

    def _cluster(self, frames, embeddings, precisions, seediness):
        foreground = torch.stack([self.foreground[t] for t in frames])  # [T', H, W]
        # A graph replay's labels are overwritten by the next clip's: the stitcher keeps them.
        labels = self.steps.cluster(embeddings, precisions, seediness, foreground).clone()
        stitched = self.stitcher.add_clip(labels, frames, foreground=foreground)
        self.timer.charge("clustering")
        return stitched

    # -- stage 5: outputs of final frames --------------------------------------------------------

    def _tracks_present(self, stitched):
        """{frame: ascending ids of the tracks in its labels} for the frames a clip made final,
        from one presence table copied to the host per clip (the masks to make depend on it).
        Only the clip's clusters can appear there, so the table has one column per cluster
        (less those whose proposed id was never stored: they appear on no new frame)."""
        highest = self.stitcher.next_track_id - 1
        candidates = sorted(
            {track_id for track_id in stitched.cluster_track_ids.tolist() if track_id <= highest}
        )
        labels = stitched.labels  # [T_new, H_c, W_c]
        if not candidates or labels.shape[0] == 0:
            return {frame: [] for frame in stitched.frame_indices}
        width = highest + 2  # labels -1 .. highest
        slots = (
            torch.arange(labels.shape[0], device=labels.device).view(-1, 1, 1) * width + labels + 1
        )
        table = torch.zeros(labels.shape[0] * width, dtype=torch.bool, device=labels.device)
        table.index_fill_(0, slots.flatten(), True)  # the value a kernel argument, not a copy
        columns = torch.tensor(candidates).add_(1).to(labels.device, non_blocking=True)
        with expected_host_wait():  # which masks to make
            present = table.view(-1, width).index_select(1, columns).cpu()  # [T_new, K]
        return {
            frame: [track_id for track_id, here in zip(candidates, row) if here]
            for frame, row in zip(stitched.frame_indices, present.tolist())
        }

    def _emit_clip(self, stitched):
        """Masks (RLE) and class statistics of the frames a clip made final, in order."""
        self._frame_tracks.update(self._tracks_present(stitched))
        for frame, labels in zip(stitched.frame_indices, stitched.labels.unbind(0)):
            self._emit_frame(frame, labels)
        waiting, self._to_encode = self._to_encode, []
        if not waiting:
            return
        labels = torch.stack([item[1] for item in waiting])
        sizes = dict(
            resized=self.resized, frame_size=self.frame_size, full_resolution=self.full_resolution
        )
        if self.streaming:  # a stream hands each frame over now
            encoded = encode_clip_masks(labels, [item[2] for item in waiting], **sizes)
            for (frame, labels, track_ids, class_logits, image), rles in zip(waiting, encoded):
                self._emitted.append(
                    self._streamed_frame(frame, labels, track_ids, rles, class_logits, image)
                )
            return
        self._collect_masks()
        self._encoding = (
            [item[0] for item in waiting],
            ClipMaskEncoding(
                labels, [item[2] for item in waiting], side_stream=self._side_stream, **sizes
            ),
        )

    def _collect_masks(self):
        """The RLEs of the last clip's frames, started when it was emitted: collected after
        the next clip's network work is queued, so on a GPU they are found and copied back
        while the device runs it."""
        if self._encoding is None:
            return
        (frames, encoding), self._encoding = self._encoding, None
        for frame, rles in zip(frames, encoding.result()):
            for track_id, rle in rles.items():
                self.rles[track_id][frame] = rle

    def _emit_frame(self, frame, labels):
        """Class statistics of one final frame; its masks wait for the clip's other frames.
        labels [H_c, W_c] int64."""
        track_ids = self._frame_tracks.pop(frame)
        class_logits = self.class_logits.pop(frame, None)
        image = self._images.pop(frame, None)
        if class_logits is not None:
            class_logits = self._upsample_frame(class_logits)
        if not self.streaming:
            if not track_ids:
                return
            if class_logits is not None:
                self._accumulate_classes(labels, class_logits, track_ids[-1])
            class_logits = None  # accumulated: the encoding needs only the labels
        self._to_encode.append((frame, labels, track_ids, class_logits, image))

    def _streamed_frame(self, frame, labels, track_ids, rles, class_logits, image):
        """One final frame of a stream: its tracks numbered 1, 2, ... by first appearance, each
        with its category so far (arg max of the track's mean class logits over the frames seen,
        background excluded: the YouTube-VIS rule applied to what has been seen)."""
        if class_logits is not None and class_logits.shape[0] > 2 and track_ids:
            # Row slot + 1 of each voxel's track (0: outliers), found in the ascending ids.
            ids = torch.tensor(track_ids).to(labels.device, non_blocking=True)
            slots = torch.where(labels >= 0, torch.searchsorted(ids, labels) + 1, 0)
            sums = torch.zeros(
                len(track_ids) + 1, class_logits.shape[0], dtype=torch.float64, device=labels.device
            )
            sums.index_add_(0, slots.flatten(), class_logits.flatten(1).t().double())
            for track_id, track_sum in zip(track_ids, sums[1:].unbind(0)):
                total = self._live.get(track_id)
                self._live[track_id] = track_sum if total is None else total + track_sum
        totals = [self._live.get(track_id) for track_id in track_ids]
        known = [total for total in totals if total is not None]
        with expected_host_wait():  # a stream hands each frame's categories over now
            best = iter(torch.stack(known)[:, 1:].argmax(1).tolist() if known else [])
        tracks = []
        for track_id, total in zip(track_ids, totals):
            if track_id not in self._display_numbers:
                self._next_display_number += 1
                self._display_numbers[track_id] = self._next_display_number
            category = 1 if total is None else next(best) + 1
            tracks.append(
                Track(
                    self._display_numbers[track_id],
                    self.frame_size,
                    {frame: rles[track_id]},
                    category_id=category,
                )
            )
        return StreamedFrame(frame, tracks, image)

    def _forget_finished_tracks(self):
        """Streams keep no state of a track that can no longer continue: the stitcher links a
        clip only to the previous one, so a track absent from its frames has ended."""
        live = self.stitcher.live_track_ids()
        for finished in [track_id for track_id in self._display_numbers if track_id not in live]:
            self._display_numbers.pop(finished)
            self._live.pop(finished, None)

    def _accumulate_classes(self, labels, class_logits, highest):
        """Per track: summed class logits and votes of the per-voxel argmax (channel 0 = bg).
        Every voxel is added, outliers into row 0, so nothing waits for the device."""
        num_classes = class_logits.shape[0]
        if self.class_logit_sums is None:
            self.class_logit_sums = _GrowingRows(num_classes, torch.float64, self.device)
            self.class_votes = _GrowingRows(num_classes, torch.int64, self.device)
        self.class_logit_sums.reserve(highest)
        self.class_votes.reserve(highest)
        rows = labels.reshape(-1) + 1  # [N], 0 = outlier
        logits = class_logits.reshape(num_classes, -1).t()  # [N, C]
        self.class_logit_sums.values.index_add_(0, rows, logits.double())
        votes = self.class_votes.values.view(-1)
        votes.index_add_(0, rows * num_classes + logits.argmax(dim=1), torch.ones_like(rows))

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> VideoPrediction:
        """Process the whole video: every stitched track with its statistics (no default rule;
        the predictor sets it)."""
        for _ in self._steps():
            pass
        return self._prediction()

    def _prediction(self):
        with expected_host_wait():  # the end of the video: the results leave the device
            return self._collected_prediction()

    def _collected_prediction(self):
        stats = self.stitcher.track_stats()
        ids = stats.track_ids
        class_logit_sums = class_votes = None
        if self.class_logit_sums is not None:
            class_logit_sums = self.class_logit_sums.rows(ids)
            class_votes = self.class_votes.rows(ids)
        elif self.config.semantic_decoder is not None:
            # no track anywhere in the video: empty per-class arrays, not "no semantic head"
            class_logit_sums = np.zeros((0, self.config.num_classes), np.float64)
            class_votes = np.zeros((0, self.config.num_classes), np.int64)
        self.timer.charge("outputs")
        timings = self.timer.totals()
        timings["total"] = sum(timings[stage] for stage in STAGES)
        return VideoPrediction(
            name=self.source.name,
            frame_size=self.frame_size,
            num_frames=self.num_frames,
            fps=self.source.fps,
            video_id=self.source.video_id,
            rles=dict(self.rles),
            track_ids=ids.cpu().numpy(),
            pixel_counts=stats.pixel_counts.cpu().numpy(),
            first_frames=stats.first_frames.cpu().numpy(),
            last_frames=stats.last_frames.cpu().numpy(),
            class_logit_sums=class_logit_sums,
            class_votes=class_votes,
            max_tracks=self.inference.max_tracks,
            timings=timings,
            diagnostics=dict(self.diagnostics),
        )

    def stream(self) -> Iterator[StreamedFrame]:
        """Process the video as a stream: yields a :class:`StreamedFrame` for every frame as
        soon as it is final (about one clip after it is decoded), in order; nothing is kept per
        track once the track has ended, so memory stays flat on an endless stream."""
        for emitted in self._steps():
            yield from emitted

    @torch.inference_mode()
    def _steps(self):
        """The loop; yields the frames emitted by each clustered clip (streams only)."""
        if self._started:
            raise RuntimeError("a VideoRun processes its video once; make a new one")
        self._started = True
        self._frame_iterator = prefetched(
            self.source, transform=pinned_frame if self.device.type == "cuda" else None
        )
        self.timer.restart()
        try:
            yield from self._clip_loop()
        finally:
            self._frame_iterator.close()  # stops the reader when the loop ends early
        self.num_frames = self.frames_read
        self._note_peak("live_tracks", len(self._display_numbers))

    def _clip_loop(self):
        inference = self.inference
        features, pending = {}, []  # pending: (clip index, heads outputs) awaiting clustering
        finished_by_clip, final_frames = {}, set()
        schedule = streamed_clip_schedule(
            self._has_frame, inference.clip_length, inference.clip_overlap
        )
        for index, (clip, finished) in enumerate(schedule):
            missing = sorted(set(clip) - set(features))
            if missing:
                self._backbone(missing, features)
            self._note_peak("cached_frames", len(features))
            pending.append((index, self._heads(clip, features)))
            self._collect_masks()
            self.timer.charge("outputs")
            self._note_peak("pending_clips", len(pending))
            self._note_peak("semantic_frames", len(self.semantic_sums) + len(self.seediness_sums))
            finished_by_clip[index] = finished
            for frame in finished:
                del features[frame]
                self._finalise_frame(frame)
            final_frames.update(finished)
            self.timer.charge("clustering")
            # A clip is clustered once every frame of it is final, in order (the stitcher
            # chains each clip to the previous one).
            while pending and final_frames.issuperset(pending[0][1][0]):
                clustered, outputs = pending.pop(0)
                stitched = self._cluster(*outputs)
                for frame in finished_by_clip.pop(clustered):
                    del self.foreground[frame]
                    final_frames.discard(frame)
                self._emit_clip(stitched)
                self.timer.charge("outputs")
                if self.streaming:
                    self._forget_finished_tracks()
                    emitted, self._emitted = self._emitted, []
                    yield emitted
                    self.timer.restart()  # the consumer's time is not ours
            self._note_peak("final_frames_held", len(self.foreground) + len(self.class_logits))
        self._collect_masks()
        self.timer.charge("outputs")
        self.diagnostics["live_entries_at_end"] = (
            len(features)
            + len(pending)
            + len(self.semantic_sums)
            + len(self.seediness_sums)
            + len(self.class_logits)
            + len(self.foreground)
            + len(self._decoded)
            + len(final_frames)
            + len(self._images)
            + len(self._frame_tracks)
            + (self._encoding is not None)
        )

    def _note_peak(self, what, value):
        key = f"peak_{what}"
        self.diagnostics[key] = max(self.diagnostics[key], value)
