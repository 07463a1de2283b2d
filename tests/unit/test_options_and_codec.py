import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from corral import App, ConfigError, JobOptions, PayloadError, Priority, Settings
from corral.ids import new_job_id
from corral.options import JOB_ID_RE
from corral.timing import due_in_ms


class Order(BaseModel):
    shop: str
    total: float


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"priority": -1}, "priority"),
        ({"priority": 5000}, "priority"),
        ({"job_id": "has space"}, "job_id"),
        ({"timeout": timedelta(0)}, "timeout"),
        ({"keep_completed": timedelta(seconds=-1)}, "keep_completed"),
        ({"delay": timedelta(1), "run_at": datetime.now(UTC)}, "either delay or run_at"),
        ({"colour": "red"}, "unknown job option"),
    ],
)
def test_bad_options_refused(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        JobOptions().merged(**changes)


def test_delay_replaces_run_at_when_overridden() -> None:
    at = JobOptions().merged(run_at=datetime.now(UTC))
    assert at.merged(delay=timedelta(seconds=1)).run_at is None


def test_due_in_ms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert due_in_ms(None, None) == 0
    assert due_in_ms(timedelta(seconds=2), None) == 2000
    assert due_in_ms(None, now + timedelta(seconds=3), now) == 3000
    assert due_in_ms(None, now - timedelta(seconds=3), now) == 0
    with pytest.raises(ConfigError, match="timezone-aware"):
        due_in_ms(None, datetime(2026, 1, 1))


def test_ids_are_unique_and_time_sorted() -> None:
    ids = [new_job_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert all(len(i) == 22 and JOB_ID_RE.match(i) and not i.startswith("-") for i in ids)
    assert ids[0][:8] <= ids[-1][:8]
    time.sleep(0.002)
    assert ids[-1] < new_job_id()  # a later millisecond sorts after


def test_job_definition_errors() -> None:
    app = App()
    with pytest.raises(ConfigError, match="no NUL"):
        app.job(name="bad\x00name")(lambda: None)
    with pytest.raises(ConfigError, match="queue name"):
        app.job(queue="bad queue!")
    with pytest.raises(ConfigError, match=r"\*args"):

        @app.job
        def variadic(*items: int) -> None: ...

    with pytest.raises(ConfigError, match="mode='async' needs"):

        @app.job(mode="async")
        def not_async(x: int) -> None: ...

    @app.job
    def once(x: int) -> None: ...

    with pytest.raises(ConfigError, match="already registered"):

        @app.job(name="once")
        def twice(x: int) -> None: ...


def test_prepare_validates_and_names_the_field() -> None:
    app = App()

    @app.job(group=lambda order: order.shop)
    async def charge(order: Order, retries: int = 0) -> float:
        return order.total

    prepared = charge.prepare(Order(shop="acme", total=9.5))
    assert prepared.new.group == "acme" and prepared.new.priority == Priority.NORMAL
    with pytest.raises(PayloadError) as err:
        charge.prepare({"shop": "acme", "total": "lots"})  # type: ignore[arg-type]
    assert "order.total" in str(err.value) and err.value.fields == ["order.total"]
    with pytest.raises(PayloadError, match="unexpected keyword|got an unexpected"):
        charge.prepare(Order(shop="a", total=1), colour="red")  # type: ignore[call-arg]


def test_payload_limit() -> None:
    app = App(Settings(max_payload_bytes=100))

    @app.job
    def big(text: str) -> None: ...

    big.prepare("x" * 50)
    with pytest.raises(PayloadError, match="over the limit of 100 bytes"):
        big.prepare("x" * 200)


def test_group_function_errors_are_payload_errors() -> None:
    app = App()

    @app.job(group=lambda order: order.missing)
    def bad_group(order: Order) -> None: ...

    @app.job(group=lambda order: "")
    def empty_group(order: Order) -> None: ...

    with pytest.raises(PayloadError, match="group function of job 'bad_group' raised"):
        bad_group.prepare(Order(shop="a", total=1))
    with pytest.raises(PayloadError, match="non-empty"):
        empty_group.prepare(Order(shop="a", total=1))


def test_positional_fast_path_and_keyword_only_parameters() -> None:
    app = App()

    @app.job
    def notify(user: str, channel: str = "email", *, urgent: bool = False) -> None: ...

    assert notify.prepare("u1").new.payload == '{"user":"u1","channel":"email","urgent":false}'
    assert notify.prepare("u1", "sms", urgent=True).new.payload == (
        '{"user":"u1","channel":"sms","urgent":true}'
    )
    with pytest.raises(PayloadError, match="user"):
        notify.prepare()  # type: ignore[call-arg]
    with pytest.raises(PayloadError, match="too many positional"):
        notify.prepare("u1", "sms", True)  # type: ignore[misc]
