"""`jobs show` trims Corral's frames above the user's handler (issue 13.7). Pure."""

from __future__ import annotations

from corral.cli._tracebacks import is_corral_frame, trim_corral_frames

WORKER_ELSEWHERE = "/srv/app/.venv/lib/python3.12/site-packages/corral"

ASYNC_HANDLER = f'''Traceback (most recent call last):
  File "{WORKER_ELSEWHERE}/worker/core.py", line 370, in _attempt
    result = await self._runners.run(job_fn, job.payload, ctx, timeout)
             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.12/asyncio/tasks.py", line 520, in wait_for
    return await fut
  File "{WORKER_ELSEWHERE}/worker/runners.py", line 62, in run
    result = await job_fn.fn(**kwargs)
  File "/srv/app/shop/jobs.py", line 7, in sync_order
    raise UpstreamError("HTTP 429")
  File "/srv/app/shop/http.py", line 3, in post
    raise UpstreamError("HTTP 429")
shop.http.UpstreamError: HTTP 429'''


def test_frames_of_corral_and_its_plumbing_are_recognised_wherever_installed() -> None:
    assert is_corral_frame(f"{WORKER_ELSEWHERE}/worker/core.py")
    assert is_corral_frame("/home/dev/corral/src/corral/worker/_child.py")
    assert is_corral_frame("/usr/lib/python3.11/asyncio/tasks.py")
    assert is_corral_frame("/usr/lib/python3.11/threading.py")
    assert not is_corral_frame("/srv/app/shop/jobs.py")
    assert not is_corral_frame("/srv/corral/shop/not_ours.py")  # a directory named corral
    assert not is_corral_frame("/srv/app/.venv/lib/python3.12/site-packages/httpx/_client.py")


def test_leading_corral_frames_are_trimmed_and_counted() -> None:
    text, hidden = trim_corral_frames(ASYNC_HANDLER)
    assert hidden == 3
    assert text.splitlines() == [
        "Traceback (most recent call last):",
        '  File "/srv/app/shop/jobs.py", line 7, in sync_order',
        '    raise UpstreamError("HTTP 429")',
        '  File "/srv/app/shop/http.py", line 3, in post',
        '    raise UpstreamError("HTTP 429")',
        "shop.http.UpstreamError: HTTP 429",
    ]


def test_each_traceback_of_a_chain_is_trimmed() -> None:
    chained = (
        ASYNC_HANDLER
        + "\n\nDuring handling of the above exception, another exception occurred:\n\n"
        + ASYNC_HANDLER.replace("HTTP 429", "retry failed")
    )
    text, hidden = trim_corral_frames(chained)
    assert hidden == 6
    assert "core.py" not in text and text.count("in sync_order") == 2
    assert "During handling of the above exception" in text


def test_a_traceback_of_corral_alone_is_kept_whole() -> None:
    own = (
        "Traceback (most recent call last):\n"
        f'  File "{WORKER_ELSEWHERE}/worker/core.py", line 370, in _attempt\n'
        "    raise timeout_error(seconds)\n"
        "JobTimeout: attempt exceeded its timeout of 0.2s"
    )
    assert trim_corral_frames(own) == (own, 0)
    assert trim_corral_frames("") == ("", 0)
    assert trim_corral_frames("no traceback here") == ("no traceback here", 0)
