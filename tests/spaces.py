"""A stand-in for Hugging Face's `spaces` package (ZeroGPU), for tests: `monkeypatch.setitem(sys.modules, "spaces",
tests.spaces)`. It keeps what matters to the code that uses it: `spaces.GPU`, bare or with a `duration` (a number or
a function of the call's arguments), runs the function on copies of its arguments and hands back a copy of its
result, pickled both ways as ZeroGPU's worker does, so state changed in the call and not returned is lost; and it
refuses a duration out of range. Every call is recorded in `calls` as (function name, seconds asked), and the
Gradio request it saw in `requests`: the real package reads it from Gradio's context variable for the visitor's
quota, so a call from a thread not started in the request's context sees none."""
import functools
import inspect
import pickle

MAX_DURATION = 120
calls: list[tuple[str, float]] = []
requests: list = []


def _across(value):
    return pickle.loads(pickle.dumps(value))


def _request():
    from gradio.context import LocalContext

    return LocalContext.request.get(None)


def GPU(fn=None, *, duration=60):  # noqa: N802 - the real package's name
    def decorate(fn):
        def asked(args, kwargs):
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            if not 0 < seconds <= MAX_DURATION:
                raise RuntimeError(f"ZeroGPU duration {seconds!r} is out of range")
            calls.append((fn.__name__, seconds))
            requests.append(_request())
            return _across((args, kwargs))

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args, **kwargs):
                args, kwargs = asked(args, kwargs)
                for item in fn(*args, **kwargs):
                    yield _across(item)
            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            args, kwargs = asked(args, kwargs)
            return _across(fn(*args, **kwargs))
        return wrapper

    return decorate(fn) if fn is not None else decorate
