"""Frame sampling and decoding only what is sampled."""
import numpy as np
import pytest
from dflite.data import video
from dflite.data.video import VideoError, read_frames, read_sampled, sample_frame_indices, write_mp4


def _frames(n, h=48, w=64):
    # Each frame carries its own index as brightness, so we can tell which one came back.
    return np.stack([np.full((h, w, 3), 4 * i, np.uint8) for i in range(n)])


def test_uniform_capstone_all():
    assert sample_frame_indices(100, "uniform", 5) == [0, 25, 50, 74, 99]
    assert sample_frame_indices(3, "uniform", 32) == [0, 1, 2]
    assert sample_frame_indices(95, "capstone", label=0) == [0, 30, 60, 90]
    fake = sample_frame_indices(300, "capstone", label=1, seed_key="Deepfakes/000_001", seed=0)
    assert len(fake) == 10 and fake == sorted(set(fake))
    assert fake == sample_frame_indices(300, "capstone", label=1, seed_key="Deepfakes/000_001", seed=0)
    assert fake != sample_frame_indices(300, "capstone", label=1, seed_key="Deepfakes/001_000", seed=0)
    assert sample_frame_indices(4, "all") == [0, 1, 2, 3]
    assert sample_frame_indices(0, "uniform") == []
    with pytest.raises(ValueError, match="unknown sampling policy 'every'"):
        sample_frame_indices(10, "every")


@pytest.mark.parametrize("gap", [1000, 2])  # 1000: always grab; 2: seek across every gap
def test_sampled_frames_are_the_ones_asked_for(tmp_path, monkeypatch, gap):
    path = tmp_path / "v.mp4"
    write_mp4(path, _frames(40), fps=10, crf=0)
    monkeypatch.setattr(video, "SEEK_GAP", gap)
    everything = read_frames(path)  # plain sequential decode of every frame: the reference
    got, frames = read_sampled(path, [3, 17, 39])
    assert got == [3, 17, 39]
    for i, f in zip(got, frames):
        assert np.array_equal(f, everything[i])
    assert len({float(f.mean()) for f in frames}) == 3  # and they are different frames


def test_indices_past_the_end_are_dropped(tmp_path):
    path = tmp_path / "v.mp4"
    write_mp4(path, _frames(5), fps=10, crf=0)
    got, _ = read_sampled(path, [1, 4, 9])
    assert got == [1, 4]


@pytest.mark.parametrize("content,reason", [(b"", "undecodable"), (b"hello, not a video\n" * 50, "undecodable")])
def test_unreadable_files_raise_a_video_error_with_a_reason(tmp_path, content, reason):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError) as e:
        read_frames(path)
    assert e.value.reason == reason and "bad.mp4" in str(e.value)


def test_decoder_messages_are_kept_whole_one_per_line():
    from dflite.data.video import decoder_said

    text = "[h264 @ 0x55d0] error while decoding MB 3 4\n\nPremature end of JPEG file\n"
    assert decoder_said(text) == "[h264 @ 0x55d0] error while decoding MB 3 4 | Premature end of JPEG file"


def test_a_clip_with_a_display_rotation_is_read_upright(tiny_set, tmp_path):
    """A phone clip: frames stored sideways, flagged to be shown rotated. Decoding must give them as shown, or
    the frontal-face cascade finds nothing."""
    import subprocess

    from dflite import detect
    from dflite.config import ExtractConfig

    upright = read_frames(tiny_set.ffpp_root / "original_sequences/youtube/c23/videos/000.mp4")[:4]
    write_mp4(tmp_path / "sideways.mp4", np.ascontiguousarray(np.rot90(upright, k=-1, axes=(1, 2))), fps=8, crf=0)
    subprocess.run([video._ffmpeg(), "-y", "-loglevel", "error", "-display_rotation", "90", "-i",
                    str(tmp_path / "sideways.mp4"), "-c", "copy", str(tmp_path / "phone.mp4")], check=True)
    shown = read_frames(tmp_path / "phone.mp4")
    assert shown.shape == upright.shape
    assert np.abs(shown.astype(int) - upright.astype(int)).mean() < 3          # lossless but for yuv420p rounding
    got, frames = read_sampled(tmp_path / "phone.mp4", [3])                     # the sampled path too
    assert got == [3] and frames[0].shape == upright.shape[1:]
    times = dict.fromkeys(detect.STAGES, 0.0)
    *_, faces = detect.media_faces(tmp_path / "phone.mp4", ExtractConfig(frames=4, size=32), times)
    assert len(faces) == 4
