"""DAVIS indexed PNGs."""

import numpy as np
import pytest

from stemseg_fast.io import DAVIS_PALETTE, read_davis_png, write_davis_pngs
from stemseg_fast.tracks import Track, VideoTracks


def test_palette_is_the_davis_one():
    assert DAVIS_PALETTE.shape == (256, 3) and DAVIS_PALETTE.dtype == np.uint8
    assert DAVIS_PALETTE[:8].tolist() == [
        [0, 0, 0],
        [128, 0, 0],
        [0, 128, 0],
        [128, 128, 0],
        [0, 0, 128],
        [128, 0, 128],
        [0, 128, 128],
        [128, 128, 128],
    ]
    assert DAVIS_PALETTE[255].tolist() == [224, 224, 192]
    assert len({tuple(colour) for colour in DAVIS_PALETTE}) == 256


def test_pngs_read_back_with_the_track_indices(tmp_path, clip, video_tracks):
    sequence_dir = write_davis_pngs(tmp_path / "results", video_tracks)
    assert sorted(p.name for p in (tmp_path / "results" / "synthetic").iterdir()) == [
        f"{frame:05d}.png" for frame in range(6)
    ]
    for frame in range(6):
        indices, palette = read_davis_png(f"{sequence_dir}/{frame:05d}.png")
        assert indices.shape == (40, 56) and indices.dtype == np.uint8
        assert np.array_equal(indices, clip.instance_ids[frame] + 1)  # track n -> n + 1
        assert np.array_equal(palette, DAVIS_PALETTE)
    assert [p.name for p in (tmp_path / "results").glob(".*")] == [".synthetic.stemseg-fast"]


def test_later_tracks_win_and_empty_frames_are_written(tmp_path):
    first = np.zeros((3, 4, 4), bool)
    first[0] = True
    second = np.zeros((3, 4, 4), bool)
    second[0, :2, :2] = True
    video = VideoTracks(
        "overlap", [Track.from_masks(9, first), Track.from_masks(2, second)], (4, 4), 3
    )
    write_davis_pngs(tmp_path, video, sequence="named")
    indices, _ = read_davis_png(tmp_path / "named" / "00000.png")
    expected = np.ones((4, 4), np.uint8)
    expected[:2, :2] = 2
    assert np.array_equal(indices, expected)
    for frame in (1, 2):
        assert read_davis_png(tmp_path / "named" / f"{frame:05d}.png")[0].sum() == 0


def test_a_failure_mid_write_leaves_the_old_results(tmp_path, video_tracks, monkeypatch):
    sequence = tmp_path / "synthetic"
    write_davis_pngs(tmp_path, video_tracks)  # an earlier run
    earlier = {p.name: p.read_bytes() for p in sequence.iterdir()}
    original = VideoTracks.label_map

    def failing_label_map(self, frame):
        if frame == 3:
            raise OSError("disk full")
        return original(self, frame)

    monkeypatch.setattr(VideoTracks, "label_map", failing_label_map)
    with pytest.raises(OSError, match="disk full"):
        write_davis_pngs(tmp_path, video_tracks)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".synthetic.stemseg-fast", "synthetic"]
    assert {p.name: p.read_bytes() for p in sequence.iterdir()} == earlier
    monkeypatch.setattr(VideoTracks, "label_map", original)
    (sequence / "00000.png").write_bytes(b"changed since")
    write_davis_pngs(tmp_path, video_tracks)  # a run that succeeds replaces its folder whole
    assert {p.name: p.read_bytes() for p in sequence.iterdir()} == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == [".synthetic.stemseg-fast", "synthetic"]


@pytest.mark.parametrize("foreign", ["a source frame", "a PNG of the user's", "no mark"])
def test_a_folder_this_writer_did_not_make_is_never_replaced(tmp_path, video_tracks, foreign):
    sequence = tmp_path / "synthetic"
    if foreign == "no mark":  # our own kind of folder, but nothing says we wrote it
        write_davis_pngs(tmp_path, video_tracks)
        (tmp_path / ".synthetic.stemseg-fast").unlink()
    else:
        sequence.mkdir()
        name = "00000.jpg" if foreign == "a source frame" else "00000.png"
        (sequence / name).write_bytes(b"the user's data")
    before = {p.name: p.read_bytes() for p in sequence.iterdir()}
    with pytest.raises(ValueError, match="already exists and was not written by stemseg-fast"):
        write_davis_pngs(tmp_path, video_tracks)
    assert {p.name: p.read_bytes() for p in sequence.iterdir()} == before
    for name in ("../escape", "/abs", "..", ""):
        with pytest.raises(ValueError, match="cannot name an output"):
            write_davis_pngs(tmp_path / "out", video_tracks, sequence=name)
    assert not (tmp_path / "out").exists()


def test_links_inside_the_output_folder_are_never_followed(tmp_path, video_tracks):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "synthetic").mkdir(parents=True)
    (elsewhere / "synthetic" / "00000.png").write_bytes(b"precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "davis").symlink_to(elsewhere)
    from stemseg_fast.io.files import output_path

    with pytest.raises(ValueError, match="davis is a symbolic link: outputs are never written"):
        output_path(tmp_path / "out", "davis", "synthetic")
    with pytest.raises(ValueError, match="was not written by stemseg-fast"):
        write_davis_pngs(tmp_path / "out" / "davis", video_tracks)  # the link named as out_dir
    assert (elsewhere / "synthetic" / "00000.png").read_bytes() == b"precious"


def test_errors(tmp_path):
    tracks = [Track(index, (2, 2), {}) for index in range(256)]
    with pytest.raises(ValueError, match="has 256 tracks; 8-bit DAVIS PNGs hold at most 255"):
        write_davis_pngs(tmp_path, VideoTracks("many", tracks, (2, 2), 1))
    with pytest.raises(FileNotFoundError, match="missing.png does not exist"):
        read_davis_png(tmp_path / "missing.png")
