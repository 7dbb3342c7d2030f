"""The per-frame pipeline and ``stylize_video``.

For each frame, in order:

1. resize (only when ``size`` caps it; videos keep their resolution by default);
2. the style vector of this frame's time (one vector per clip, or a schedule);
3. the engine's one forward pass, normalising with the smoothed statistics (``stats=``);
4. colour preservation, then flow-guided blending with the previous output;
5. static masks: the stylized area and protected areas composited over the exact input.

Frames stream through one at a time: memory does not grow with the video's length.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import OptionError
from ..geometry import fit_size
from ..io.tensors import image_to_tensor, tensor_to_image
from ..pipeline.engine import StyleEngine
from ..pipeline.options import MIN_SIDE, StylizeOptions
from ..pipeline.prepare import match_colours, preserve_color
from ..semantic.masks import binary_mask, composite, feather_alpha
from .container import VideoReader, VideoWriter, check_output_path
from .options import VideoOptions
from .schedule import StyleSchedule
from .temporal import FlowBlender, StatsSmoother


@dataclass
class Progress:
    """One progress event, shared by the command line's bar and (later) the web UI."""

    done: int
    total: int          # 0 when the container does not say
    seconds: float

    @property
    def fps(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


def check_video_options(options: StylizeOptions) -> StylizeOptions:
    """Region features that need one image's label maps do not apply to a whole video yet."""
    for name in ("regions", "labels", "auto_regions", "refine"):
        if getattr(options, name):
            raise OptionError(name, "is not supported for video yet; static mask and protect are")
    return options


class FrameStylizer:
    """Stylizes the frames of one clip in order, carrying the temporal state between them."""

    def __init__(self, engine: StyleEngine, schedule: StyleSchedule, options: StylizeOptions,
                 video: VideoOptions = VideoOptions()):
        self.engine, self.schedule = engine, schedule
        self.options, self.video = check_video_options(options), video.validate()
        self.smoother = StatsSmoother(video.smooth_stats) if video.smooth_stats > 0 else None
        # the colour match's map from the output's moving-average moments: per frame, it pumped
        self.colour_smoother = StatsSmoother(video.smooth_stats) if video.smooth_stats > 0 else None
        self.blender = FlowBlender(video.flow_blend, video.flow_size, video.flow_preset) \
            if video.flow_blend > 0 else None
        self.size: tuple[int, int] | None = None
        self.alpha: np.ndarray | None = None
        self.keep: np.ndarray | None = None
        self._flow_pool: ThreadPoolExecutor | None = None

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Frames keep their size unless ``size`` caps the longer side."""
        if min(width, height) < MIN_SIDE:
            raise OptionError("video", f"frames are {width}x{height}; the shorter side must be at least {MIN_SIDE} px")
        return fit_size(width, height, self.options.size or max(width, height))

    def __call__(self, rgb: np.ndarray, seconds: float) -> np.ndarray:
        """One frame (H, W, 3) uint8 at ``seconds`` -> its stylization, uint8, at the output size."""
        frame = self._resized(rgb)
        # the flow reads only the input frames: it runs in a second thread while the network works
        motion = self._flow_thread().submit(self.blender.motion, frame) if self.blender is not None else None
        content = image_to_tensor(Image.fromarray(frame)).to(self.engine.device)
        vector = self.schedule.at(seconds)
        output = self.engine.stylize(content, vector, strength=self.options.strength, stats=self.smoother,
                                     border_margin=self.options.border_margin)
        output = match_colours(output, self.schedule.colours_at(seconds),
                               self.options.painting_colours * self.options.strength, own=self.colour_smoother)
        if self.options.preserve_colors:
            output = preserve_color(output, content)
        result = np.asarray(tensor_to_image(output))
        if motion is not None:
            result = self.blender.blend(motion.result(), result)
        if self.alpha is not None or self.keep is not None:
            layers = [(self.alpha, result)] if self.alpha is not None else [(np.ones(frame.shape[:2]), result)]
            result = composite(frame, layers, self.keep)
        return result

    def _flow_thread(self) -> ThreadPoolExecutor:
        """The one worker thread of this clip's flow, ended when the stylizer is collected (the
        server makes one per live session)."""
        if self._flow_pool is None:
            self._flow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semstyle-flow")
            weakref.finalize(self, self._flow_pool.shutdown, wait=False)
        return self._flow_pool

    def _resized(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        size = self.output_size(width, height)
        if self.size != size:
            self.size = size
            self._read_masks(size)
        if size != (width, height):
            return np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS))
        return rgb

    def _read_masks(self, size: tuple[int, int]) -> None:
        """Static masks, read once per frame size."""
        opts = self.options
        self.alpha = None if opts.mask is None else feather_alpha(binary_mask(opts.mask, size), opts.feather)
        self.keep = None
        if opts.protect:
            masks = [binary_mask(m, size, "protect mask") for m in opts.protect]
            self.keep = feather_alpha(np.logical_or.reduce(masks), opts.feather)


def stylize_frames(engine: StyleEngine, frames: Iterable[np.ndarray], schedule: StyleSchedule,
                   options: StylizeOptions, video: VideoOptions = VideoOptions(),
                   rate: float = 25.0) -> Iterator[np.ndarray]:
    """Frames you bring (RGB uint8 arrays, in order, ``rate`` per second) -> stylized frames."""
    stylizer = FrameStylizer(engine, schedule, options.validate(), video)
    for index, rgb in enumerate(frames):
        yield stylizer(np.asarray(rgb, dtype=np.uint8), index / rate)


@dataclass
class VideoResult:
    path: Path
    frames: int
    width: int
    height: int
    seconds: float
    audio: bool


def stylize_video(engine: StyleEngine, source: str | Path, output: str | Path, schedule: StyleSchedule,
                  options: StylizeOptions, video: VideoOptions = VideoOptions(),
                  on_progress: Callable[[Progress], None] | None = None) -> VideoResult:
    """Stylize a video file into ``output`` (``.mp4``/``.mov``/``.mkv``: H.264, ``.webm``: VP9),
    keeping its timestamps, rotation and (unless ``video.audio`` is off) its audio. The file
    appears only when complete; an error or Ctrl-C leaves none."""
    check_output_path(output)
    stylizer = FrameStylizer(engine, schedule, options.validate(), video)
    start = time.perf_counter()
    with VideoReader(source) as reader:
        writer = None
        try:
            for frame in reader:
                if writer is None:  # the first frame tells the rotation, hence the stored size
                    writer = VideoWriter(output, *_stored_size(frame.rgb, stylizer, reader.rotation),
                                         reader.time_base, reader.rate, reader.rotation,
                                         reader if video.audio else None)
                writer.write(stylizer(frame.rgb, frame.time), frame.pts)
                if on_progress:
                    on_progress(Progress(writer.count, reader.frames, time.perf_counter() - start))
            path = writer.finish()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    width, height = stylizer.size
    return VideoResult(path, writer.count, width, height, time.perf_counter() - start, writer.audio_out is not None)


def _stored_size(upright_rgb: np.ndarray, stylizer: FrameStylizer, rotation: int) -> tuple[int, int]:
    """The encoder's (width, height): the output size of an upright frame, turned back by the rotation."""
    height, width = upright_rgb.shape[:2]
    out_w, out_h = stylizer.output_size(width, height)
    return (out_h, out_w) if (rotation // 90) % 2 else (out_w, out_h)

