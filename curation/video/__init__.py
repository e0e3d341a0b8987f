"""Video decoding for the extract stage: probe, frame sampling, decoders, resizing, JPEG encoding.

    info = probe(path, "decord")
    sampled = sample_frames(path, VideoConfig(num_frames=16))   # RGB arrays + indices + PTS times

Bad media raise `VideoError` with a reason meant for a failed row.
"""

from curation.video.config import VideoConfig
from curation.video.encode import encode_jpeg
from curation.video.errors import VideoError
from curation.video.info import VideoInfo
from curation.video.load import SampledFrames, sample_frames
from curation.video.probe import probe
from curation.video.qwen_rules import linspace_indices, smart_nframes, smart_resize
from curation.video.resize import frame_size, image_size, resize_frame
from curation.video.sampling import fps_frame_target, frame_indices, timestamps, uniform_indices

__all__ = [
    "SampledFrames",
    "VideoConfig",
    "VideoError",
    "VideoInfo",
    "encode_jpeg",
    "fps_frame_target",
    "frame_indices",
    "frame_size",
    "image_size",
    "linspace_indices",
    "probe",
    "resize_frame",
    "sample_frames",
    "smart_nframes",
    "smart_resize",
    "timestamps",
    "uniform_indices",
]
