"""Sampled decoding with PyAV: the frames `video.read_sampled` returns, for less CPU.

OpenCV decodes every frame up to each sampled one. Here the decoder skips what no sampled frame needs:

- frames nothing refers to (`skip_frame = "NONREF"`) unless they are sampled themselves: reference frames are
  all decoded, so every sampled frame is decoded from exactly the pictures a full decode would use;
- whole stretches before the keyframe that starts a sampled frame's group: the decoder is drained and reset
  there, as a seek would, but packets are counted, not sought, so long GOPs and inaccurate container indexes
  cost nothing.

Frame numbers are display ranks of packet timestamps (a first pass reads packets without decoding), so they
are the frame numbers of a full decode in any container. Frames come out bit-identical to OpenCV's (same
FFmpeg decoder and colour conversion). tests/test_pyav.py checks x264 with and without B-frames and with open
GOPs, HEVC, VP9 in WebM, MPEG-4 Part 2, variable frame rate, full-range BT.709 and a rotated phone clip. On a stream
broken mid-way both decoders conceal the damage the same way: they differ only on the frame at the break, and
FFmpeg flags none of the concealed frames as corrupt. Measured by benchmarks/decode.py.
"""
from __future__ import annotations

import bisect
import itertools
from pathlib import Path

import numpy as np

from . import video
from .video import VideoError


def _said(e) -> str:
    """FFmpeg's message without the path PyAV appends to it (reports and the demo name the file themselves)."""
    return getattr(e, "strerror", None) or str(e)


def _open(path):
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError(path, "missing", "no such file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, ValueError) as e:
        raise VideoError(path, "undecodable", f"not a video container PyAV/FFmpeg can open: {_said(e)}") from None
    if not container.streams.video:
        container.close()
        raise VideoError(path, "undecodable", "no video stream")
    return container


def packet_layout(path) -> tuple | None:
    """([pts of each video packet in decode order], [its display index], [is it a keyframe]), without decoding;
    None where packets cannot number the frames (a packet without a timestamp, two with one, or one the container
    says to discard): `read_sampled` then leaves the file to OpenCV."""
    import av

    try:
        with _open(path) as container:
            stream = container.streams.video[0]
            packets = [(p.pts, p.is_keyframe, p.is_discard) for p in container.demux(stream) if p.size]
    except av.error.FFmpegError as e:
        raise VideoError(path, "undecodable", _said(e)) from None
    if any(p is None or discard for p, _, discard in packets) or len({p for p, _, _ in packets}) < len(packets):
        return None
    order = sorted(range(len(packets)), key=lambda i: packets[i][0])
    display = [0] * len(packets)
    for rank, i in enumerate(order):
        display[i] = rank
    return [p for p, _, _ in packets], display, [k for _, k, _ in packets]


def _upright(frame) -> np.ndarray:
    """BGR pixels as shown: a display-rotation flag (phone clips) applied, as OpenCV does."""
    image = frame.to_ndarray(format="bgr24")
    turns = round(getattr(frame, "rotation", 0) / 90) % 4  # degrees counter-clockwise
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def read_sampled(path, indices=None) -> tuple:
    """(frame indices read, BGR frames) of the sorted `indices` (or a function of the frame count that returns
    them; None: every frame), as `video.read_sampled` returns them."""
    import av

    layout = packet_layout(path)
    if layout is None:
        return video.read_sampled_opencv(path, indices)
    pts, display, keys = layout
    n = len(pts)
    if callable(indices):
        indices = indices(n)
    wanted = list(range(n)) if indices is None else sorted({int(i) for i in indices if 0 <= int(i) < n})
    position = {d: i for i, d in enumerate(display)}  # display index -> decode position
    keyframes = [i for i, k in enumerate(keys) if k] or [0]

    def start(w):
        """Where decoding must start for sampled frame w: the last keyframe before its packet that is shown no
        later than it (an open GOP's leading frames need the group before; the frames after its keyframe do not)."""
        k = bisect.bisect_right(keyframes, position[w]) - 1
        while k > 0 and display[keyframes[k]] > w:
            k -= 1
        return keyframes[k] if k >= 0 else 0

    starts = [start(w) for w in wanted]
    sampled_pts = {pts[position[w]]: w for w in wanted}
    out: dict = {}
    try:
        with _open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if video.DECODE_THREADS:  # worker processes decode on one thread: the cores are theirs already
                stream.thread_count = video.DECODE_THREADS
            decoder = stream.codec_context

            def keep(frames):
                for f in frames:
                    if f.pts in sampled_pts:
                        out[sampled_pts[f.pts]] = _upright(f)

            j, pos, live = 0, -1, False
            for packet in container.demux(stream):
                if not packet.size or packet.pts is None:
                    continue
                pos += 1
                while j < len(wanted) and wanted[j] in out:
                    j += 1
                if j == len(wanted):
                    break
                if pos < starts[j]:
                    if live:  # leaving a stretch: drain its last frames and reset the decoder, as a seek would
                        keep(decoder.decode(None))
                        decoder.flush_buffers()
                        live = False
                    continue
                live = True
                decoder.skip_frame = "DEFAULT" if packet.pts in sampled_pts else "NONREF"
                keep(decoder.decode(packet))
            if live:
                keep(decoder.decode(None))
    except av.error.FFmpegError as e:  # a broken stream: the frames decoded before the break are kept
        if not out:
            raise VideoError(path, "undecodable", _said(e)) from None
    # As OpenCV: the frames before the first one that could not be decoded (the stream broke there)
    got = list(itertools.takewhile(lambda w: w in out, wanted))
    return got, [out[w] for w in got]
