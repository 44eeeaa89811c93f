"""ZeroGPU: what a Space needs to borrow a GPU per call (`spaces.GPU`) and stay within it. Pure helpers, no CUDA.

ZeroGPU runs each decorated function in a worker that holds a GPU for at most the call's `duration` seconds (a
number, or a function of the call's own arguments returning one; shorter calls queue sooner), and passes
arguments and results between processes by pickling. Three consequences shape what the Space does:
1. Nothing may touch CUDA outside a decorated function, so a video is painted in chunks of frames, each one call
   (`fastnst.video.stylize_video(painter=...)`, `frames_per_call`, `video_call_seconds`), while decoding and
   encoding stay in the Space's own process.
2. What a call changes in its arguments is lost with the worker: state a visitor carries across calls (a
   `fastnst.temporal.Smoother`) is returned and passed back in (`fastnst.video.paint_frames` returns it; a
   Smoother pickles with its features on the CPU).
3. torch.compile is not supported there: `fastnst.inference.default_mode` paints in fp32 eager on ZeroGPU.
The rates below are deliberately slow guesses (a GPU's network time is a fraction of them; the rest is the
smoother's optical flow and blending on the CPU, and copying frames): a call that ends early costs nothing, one
that runs out of time loses the visitor's video.
"""
import math

CALL_SECONDS = (10, 120)  # the least and the most one call asks for
START_SECONDS = 10.0  # a worker's start: the network to the GPU, the first call's kernels
PIXELS_PER_SECOND = 20_000_000  # painted (network, brush passes, transfers), fp32 eager
FRAME_SECONDS = 0.03  # per video frame besides its pixels: the smoother's flow and blending on the CPU
CHUNK_SECONDS = 60.0  # a chunk of frames is sized to fit ZeroGPU's default call length
CHUNK_BYTES = 256 * 2**20  # and so that its frames, pickled there and back, stay a few hundred MB
PHOTO_SECONDS = 30  # one photo up to 4K, brushes included, with the first call's start
LIVE_FRAME_SECONDS = 10  # one webcam frame: short, so a stream's calls keep their place in the queue


def frame_seconds(width: int, height: int) -> float:
    """The time budgeted for painting one video frame of width × height through the smoother."""
    return FRAME_SECONDS + width * height / PIXELS_PER_SECOND


def call_seconds(frames: int, width: int, height: int) -> int:
    """The `duration` to ask for painting `frames` frames of width × height in one call."""
    wanted = START_SECONDS + frames * frame_seconds(width, height)
    return int(min(CALL_SECONDS[1], max(CALL_SECONDS[0], math.ceil(wanted))))


def frames_per_call(width: int, height: int) -> int:
    """How many frames of width × height one call paints: as many as fit CHUNK_SECONDS and CHUNK_BYTES."""
    by_time = (CHUNK_SECONDS - START_SECONDS) / frame_seconds(width, height)
    by_bytes = CHUNK_BYTES / (width * height * 3)
    return max(1, int(min(by_time, by_bytes)))


def chunks(count: int, per_call: int) -> list[range]:
    """Frame indices 0..count-1 in consecutive calls of at most `per_call` frames."""
    return [range(start, min(count, start + per_call)) for start in range(0, count, max(1, per_call))]


def video_call_seconds(frames, *args, **kwargs) -> int:
    """`spaces.GPU(duration=video_call_seconds)` for a function whose first argument is the chunk's list of uint8
    H×W×3 frames (ZeroGPU calls it with the decorated function's own arguments)."""
    if not frames:
        return CALL_SECONDS[0]
    height, width = frames[0].shape[:2]
    return call_seconds(len(frames), width, height)


def gpu(duration):
    """A decorator: `spaces.GPU(duration=duration)` where the `spaces` package is installed (it is effect-free off
    ZeroGPU), else the function itself. `duration`: seconds, or a function of the call's arguments."""
    def decorate(fn):
        try:
            import spaces
        except ImportError:
            return fn
        return spaces.GPU(duration=duration)(fn)
    return decorate
