"""``render``: an existing YouTube-VIS results file drawn onto its videos, and its CLI."""

import importlib
import json

import cv2
import pytest
from helpers import write_frames, write_video

from stemseg_fast.cli import main
from stemseg_fast.io import write_youtube_vis_results, youtube_vis_predictions
from stemseg_fast.outputs import render


def frame_count(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.fixture
def dataset(tmp_path, clip, video_tracks):
    """A YouTube-VIS-like layout: frames under JPEGImages/<name>/, an annotation file, results."""
    root = tmp_path / "JPEGImages"
    write_frames(root / "synthetic", clip.frames, extension="jpg")
    annotations = tmp_path / "valid.json"
    annotations.write_text(
        json.dumps(
            {
                "videos": [{"id": 3, "file_names": [f"synthetic/{i:05d}.jpg" for i in range(6)]}],
                "categories": [
                    {"id": 1, "name": "disc"},
                    {"id": 2, "name": "square"},
                    {"id": 3, "name": "triangle"},
                ],
            }
        )
    )
    results = write_youtube_vis_results(
        tmp_path / "results.json", youtube_vis_predictions(video_tracks, absent="none")
    )
    return results, str(root), str(annotations)


def test_render_with_the_annotation_file(tmp_path, dataset):
    results, root, annotations = dataset
    written = render(results, root, tmp_path / "vis", annotations=annotations)
    assert written == [str(tmp_path / "vis" / "synthetic.mp4")]
    assert frame_count(written[0]) == 6


def test_render_with_videos_named_by_id(tmp_path, clip, dataset):
    results, _, _ = dataset
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "3.mp4", clip.frames)
    written = render(results, tmp_path / "videos", tmp_path / "vis")
    assert written == [str(tmp_path / "vis" / "3.mp4")] and frame_count(written[0]) == 6


def test_render_skips_low_scores_and_reports_unknown_videos(tmp_path, dataset):
    results, root, annotations = dataset
    assert (
        render(results, root, tmp_path / "vis", annotations=annotations, score_threshold=1.5) == []
    )
    with pytest.raises(ValueError, match=r"video_id 3 is not found through .*JPEGImages"):
        render(results, root, tmp_path / "vis")
    with pytest.raises(ValueError, match=r"no videos.json beside it: pass --videos"):
        render(results, None, tmp_path / "vis")


def test_render_command(tmp_path, dataset, capsys):
    results, root, annotations = dataset
    out = tmp_path / "cli"
    assert (
        main(["render", results, "--videos", root, "--annotations", annotations, "--out", str(out)])
        == 0
    )
    assert "wrote 1 overlay videos" in capsys.readouterr().out
    assert frame_count(out / "synthetic.mp4") == 6
    assert main(["render", str(tmp_path / "missing.json"), "--videos", root]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "missing.json does not exist" in error


def test_render_of_infer_output_finds_videos_and_class_names_by_itself(
    tmp_path, clip, video_tracks, monkeypatch
):
    """What infer writes (results, videos.json with input paths, categories.json) is enough."""
    video = write_video(tmp_path / "street.mp4", clip.frames)
    out = tmp_path / "out"
    out.mkdir()
    video_tracks.video_id = 7
    results = write_youtube_vis_results(out / "results.json", youtube_vis_predictions(video_tracks))
    (out / "videos.json").write_text(json.dumps([{"id": 7, "name": "street", "path": video}]))
    (out / "categories.json").write_text(
        json.dumps(
            {
                "categories": [
                    {"id": 1, "name": "disc"},
                    {"id": 2, "name": "square"},
                    {"id": 3, "name": "triangle"},
                ]
            }
        )
    )
    drawn = []
    render_module = importlib.import_module("stemseg_fast.outputs.render")
    write = render_module.write_overlay_video

    def spy(path, source, tracks, **options):
        drawn.append(tracks)
        return write(path, source, tracks, **options)

    monkeypatch.setattr(render_module, "write_overlay_video", spy)
    assert main(["render", str(results), "--out", str(tmp_path / "vis")]) == 0
    assert frame_count(tmp_path / "vis" / "street.mp4") == 6
    (tracks,) = drawn
    assert tracks.category_names == {1: "disc", 2: "square", 3: "triangle"}
    assert [track.track_id for track in tracks.tracks] == list(range(1, len(tracks.tracks) + 1))
