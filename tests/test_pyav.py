"""PyAV's sampled decoding gives OpenCV's frames, bit for bit, for several encoders, GOP structures and samples."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from dflite.data import pyav, video
from dflite.data.video import VideoError, sample_frame_indices

pytest.importorskip("av")


def opencv_frames(path, indices=None) -> np.ndarray:
    """The reference: OpenCV's decode (video.read_frames itself decodes with PyAV by default)."""
    return np.stack(video.read_sampled_opencv(path, indices)[1])

ENCODINGS = {  # name: ffmpeg output arguments (B-frames everywhere; GOPs short, long and open)
    "x264.mp4": ["-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-bf", "3", "-pix_fmt", "yuv420p"],
    "x264_open_gop.mp4": ["-c:v", "libx264", "-preset", "veryfast", "-x264-params",
                          "keyint=50:min-keyint=50:scenecut=0:open-gop=1:bframes=3", "-pix_fmt", "yuv420p"],
    "x264_one_gop.mkv": ["-c:v", "libx264", "-preset", "veryfast", "-g", "1000", "-pix_fmt", "yuv420p"],
    "mpeg4.avi": ["-c:v", "mpeg4", "-q:v", "5", "-bf", "2", "-g", "40"],
    "x264_no_b.mp4": ["-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-bf", "0", "-pix_fmt", "yuv420p"],
    "hevc.mp4": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=60:bframes=3",
                 "-pix_fmt", "yuv420p"],
    "vp9.webm": ["-c:v", "libvpx-vp9", "-b:v", "300k", "-g", "60", "-deadline", "realtime", "-cpu-used", "8"],
    # a phone or screen recording's tags: BT.709 and full range (yuvj420p)
    "bt709_full.mp4": ["-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuvj420p", "-color_range",
                       "pc", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"],
    # variable frame rate: every other run of five frames half a frame late, as phones and screen captures write
    "vfr.mkv": ["-vf", "setpts='if(lt(mod(N,10),5),N,N+0.5)/25/TB'", "-fps_mode", "vfr", "-c:v", "libx264",
                "-preset", "veryfast", "-g", "40", "-pix_fmt", "yuv420p"],
}
SOURCE = "testsrc2=size=320x240:rate=25,noise=alls=8:allf=t"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    for name, args in ENCODINGS.items():
        subprocess.run([video._ffmpeg(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                        SOURCE, "-t", "6", *args, str(folder / name)],
                       check=True)
    return folder


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_sampled_frames_are_opencvs_bit_for_bit(clips, name):
    path = clips / name
    n = video.frame_count(path)
    assert n == 150 and len(pyav.packet_layout(path)[0]) == n
    samples = [sample_frame_indices(n, "uniform", 8), sample_frame_indices(n, "capstone", label=1, seed_key=name),
               [3, 4, 5, 97, 149], [120], list(range(0, n, 30)), [47, 48, 49, 98, 99]]  # open GOPs lead in
    for indices in samples:
        want_idx, want = video.read_sampled_opencv(path, indices)
        got_idx, got = pyav.read_sampled(path, indices)
        assert got_idx == want_idx == sorted(indices)
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), (name, indices)
    got_idx, got = pyav.read_sampled(path, lambda count: [count - 1])
    assert got_idx == [n - 1] and np.array_equal(got[0], opencv_frames(path, [n - 1])[0])


def test_every_frame_and_a_rotated_phone_clip(clips, tmp_path):
    path = clips / "x264.mp4"
    assert np.array_equal(np.stack(pyav.read_sampled(path)[1]), opencv_frames(path))
    subprocess.run([video._ffmpeg(), "-y", "-loglevel", "error", "-display_rotation", "90", "-i", str(path),
                    "-c", "copy", str(tmp_path / "phone.mp4")], check=True)
    shown = opencv_frames(tmp_path / "phone.mp4", [0, 50])
    assert shown.shape[1:3] == (320, 240)  # OpenCV turns it upright
    assert np.array_equal(np.stack(pyav.read_sampled(tmp_path / "phone.mp4", [0, 50])[1]), shown)


def test_missing_and_non_video_files_are_named(tmp_path):
    with pytest.raises(VideoError, match="missing"):
        pyav.read_sampled(tmp_path / "gone.mp4", [0])
    (tmp_path / "notes.mp4").write_text("hello")
    with pytest.raises(VideoError, match="undecodable") as err:
        pyav.read_sampled(tmp_path / "notes.mp4", [0])
    assert str(tmp_path) not in err.value.detail  # FFmpeg's reason only: callers name the file (the demo by name)


def test_the_default_decoder_is_pyav_and_extraction_gives_the_same_crops_with_either(tiny_set, tmp_path, monkeypatch):
    from dflite.config import ExtractConfig
    from dflite.data.extract import extract

    assert video.DECODER == "pyav"  # unless DFLITE_DECODER says otherwise, which the test run does not
    cfg = ExtractConfig(frames=3, size=32, of_detect=False)
    stores = {}
    for decoder in ("pyav", "opencv"):
        monkeypatch.setattr(video, "DECODER", decoder)
        calls = []
        monkeypatch.setattr(pyav, "packet_layout",
                            lambda path, real=pyav.packet_layout, calls=calls: calls.append(path) or real(path))
        stores[decoder] = extract("ffpp", tiny_set.ffpp_root, tmp_path / decoder, cfg, workers=1, progress=False)
        assert bool(calls) == (decoder == "pyav")  # the setting chooses the decoder
    a, b = (s.index.sort_values("crop").reset_index(drop=True) for s in stores.values())
    assert len(a) and a.drop(columns="crop").equals(b.drop(columns="crop"))
    for name in a.crop:
        assert (tmp_path / "pyav" / name).read_bytes() == (tmp_path / "opencv" / name).read_bytes()


def test_full_range_is_decoded_as_full_range(tmp_path):
    """Bit-identity with OpenCV would also hold if both read a full-range stream as TV range. So: a lossless
    full-range grey ramp (Y = 0..255 across the frame, no chroma) must come back as that ramp; read as TV range it
    would be stretched, (Y - 16) * 255 / 219, about 9 levels off on average."""
    ramp = np.round(np.arange(320) * 255 / 319).astype(np.uint8)
    planes = np.concatenate([np.tile(ramp, (240, 1)).ravel(), np.full(2 * 120 * 160, 128, np.uint8)])
    subprocess.run([video._ffmpeg(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuvj420p", "-s",
                    "320x240", "-r", "25", "-i", "-", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuvj420p",
                    "-color_range", "pc", str(tmp_path / "ramp.mp4")], input=np.tile(planes, 3).tobytes(), check=True)
    _, frames = pyav.read_sampled(tmp_path / "ramp.mp4", [1])
    assert np.abs(frames[0].astype(int) - ramp[None, :, None]).max() <= 1
    assert np.array_equal(frames[0], video.read_sampled_opencv(tmp_path / "ramp.mp4", [1])[1][0])


def test_a_stream_broken_mid_way_gives_opencvs_frames_except_the_broken_one(clips, tmp_path):
    """4 kB of garbage in the middle of a Matroska file: both decoders conceal the damage and go on (FFmpeg flags
    none of the concealed frames as corrupt), and agree bit for bit on every frame but the one at the break."""
    subprocess.run([video._ffmpeg(), "-y", "-loglevel", "error", "-i", str(clips / "x264.mp4"), "-c", "copy",
                    str(tmp_path / "whole.mkv")], check=True)
    data = bytearray((tmp_path / "whole.mkv").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    (tmp_path / "broken.mkv").write_bytes(bytes(data))
    want_idx, want = video.read_sampled_opencv(tmp_path / "broken.mkv")
    got_idx, got = pyav.read_sampled(tmp_path / "broken.mkv")
    assert got_idx == want_idx and len(got_idx) > 100
    differ = [i for i, a, b in zip(got_idx, got, want) if not np.array_equal(a, b)]
    assert len(differ) <= 1, differ
    _, clean = pyav.read_sampled(tmp_path / "whole.mkv")
    assert all(np.array_equal(got[i], clean[i]) for i in got_idx if i < 60)  # the damage starts mid-way
    sampled_idx, sampled = pyav.read_sampled(tmp_path / "broken.mkv", range(0, 150, 10))
    assert sampled_idx == video.read_sampled_opencv(tmp_path / "broken.mkv", range(0, 150, 10))[0]
    assert all(np.array_equal(a, got[i]) or i in differ for i, a in zip(sampled_idx, sampled))
