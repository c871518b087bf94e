"""Videos as users have them: containers that misstate their length, streams that break in the
middle; inference uses every frame that decodes and says so once."""

import json

import cv2
import numpy as np
import pytest
from helpers import read_video, save_untrained_tiny_checkpoint, write_video

from stemseg_fast import Predictor
from stemseg_fast.cli import main
from stemseg_fast.synthetic import synthetic_clip

pytestmark = pytest.mark.filterwarnings("ignore:video codec:RuntimeWarning")
FRAMES, HEIGHT, WIDTH = 20, 48, 64


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    root = tmp_path_factory.mktemp("footage")
    frames = synthetic_clip(num_frames=FRAMES, height=HEIGHT, width=WIDTH, seed=5).frames
    full = write_video(root / "full.avi", frames, fourcc="MJPG")
    data = open(full, "rb").read()
    (root / "cut.avi").write_bytes(data[: len(data) // 2])  # the header still announces 20
    damaged = bytearray(data)
    middle = len(data) // 2
    damaged[middle : middle + 4000] = bytes(4000)  # a stretch of zeros inside the stream
    (root / "damaged.avi").write_bytes(bytes(damaged))
    save_untrained_tiny_checkpoint(root / "tiny.pth")
    return root


@pytest.mark.parametrize("name", ["cut", "damaged"])
def test_infer_uses_every_decodable_frame_and_warns_once(footage, tmp_path, capsys, name):
    path = footage / f"{name}.avi"
    decodable = len(read_video(path)[1])
    assert 0 < decodable < FRAMES  # the file really lies about its length
    out = tmp_path / "out"
    code = main(
        [
            "infer",
            str(path),
            "--checkpoint",
            str(footage / "tiny.pth"),
            "--out",
            str(out),
            "--format",
            "ytvis,overlay",
            "--no-progress",
        ]
    )
    assert code == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert warnings == [
        f"stemseg-fast infer: warning: video file {path}: its container "
        f"announces {FRAMES} frames, {decodable} decoded; using the "
        f"{decodable}"
    ]
    (video,) = json.loads((out / "videos.json").read_text())
    assert video["length"] == decodable
    results = json.loads((out / "results.json").read_text())
    assert all(len(entry["segmentations"]) == decodable for entry in results)
    capture = cv2.VideoCapture(str(out / "overlay" / f"{name}.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == decodable
    capture.release()


def test_a_truncated_file_gives_the_tracks_of_its_decodable_frames(footage):
    """The frames that decode give the same tracks as those frames given as an array."""
    predictor = Predictor(str(footage / "tiny.pth"))
    _, frames = read_video(footage / "cut.avi")
    with pytest.warns(UserWarning, match="announces 20 frames"):
        from_file = predictor.predict(str(footage / "cut.avi"))
    from_array = predictor.predict(np.stack(frames))
    assert from_file.num_frames == from_array.num_frames == len(frames)
    np.testing.assert_array_equal(from_file.track_ids, from_array.track_ids)
    assert from_file.rles == from_array.rles
