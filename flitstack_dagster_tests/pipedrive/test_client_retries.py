"""Retry and idempotency rules of the client, on a scripted transport (httpx.MockTransport, fake clock)."""

from __future__ import annotations

import json

import httpx
import pytest

from flitstack_dagster.pipedrive import NotFound, PipedriveClient, PipedriveError, RateLimited
from flitstack_dagster.pipedrive.errors import AmbiguousWriteError, DailyBudgetSpent

from .test_ratelimit_costs import FakeClock

TOKEN = "scripted-token-abcdef123456"


class Script:
    """Answers requests from a list of canned responses (or exceptions); records what was sent."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        a = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(a, Exception):
            raise a
        status, body, headers = a if len(a) == 3 else (*a, {})
        if isinstance(body, (bytes, str)):
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)


def ok(data, **extra):
    return (200, {"success": True, "data": data, **extra})


def make(script: Script, clock: FakeClock | None = None, **kw) -> tuple[PipedriveClient, FakeClock]:
    clock = clock or FakeClock()
    c = PipedriveClient("https://acme.pipedrive.com", TOKEN, seats=5, transport=httpx.MockTransport(script),
                        clock=clock.monotonic, sleep=clock.sleep, wall_clock=clock.wall, **kw)
    return c, clock


def test_token_only_in_header_and_urls_follow_the_specs():
    s = Script(ok({"id": 1, "name": "A"}), ok({"id": 2, "content": "n"}))
    c, _ = make(s)
    c.get_organization(1)
    c.create_note({"content": "n", "deal_id": 3, "add_time": "2024-01-02 03:04:05"})
    r1, r2 = s.requests
    assert str(r1.url) == "https://acme.pipedrive.com/api/v2/organizations/1"
    assert str(r2.url) == "https://acme.pipedrive.com/v1/notes"
    assert json.loads(r2.content) == {"content": "n", "deal_id": 3, "add_time": "2024-01-02 03:04:05"}
    for r in s.requests:
        assert r.headers["x-api-token"] == TOKEN
        assert TOKEN not in str(r.url)


def test_get_retries_5xx_with_backoff():
    s = Script((503, {"success": False, "error": "down"}), (502, b"bad gateway"), ok({"id": 1}))
    c, clock = make(s)
    assert c.get_deal(1).id == 1
    assert len(s.requests) == 3
    assert len(clock.sleeps) == 2 and clock.sleeps[1] > clock.sleeps[0] * 0.99 / 2


def test_get_gives_up_after_max_retries():
    s = Script((500, {"success": False, "error": "boom"}))
    c, _ = make(s, max_retries=3)
    with pytest.raises(PipedriveError) as e:
        c.get_deal(1)
    assert e.value.status == 500 and len(s.requests) == 4
    assert "GET /api/v2/deals/{id}" in str(e.value) and "boom" in str(e.value)


def test_post_5xx_is_ambiguous_and_not_retried():
    s = Script((500, {"success": False, "error": "boom"}), ok({"id": 9}))
    c, _ = make(s)
    with pytest.raises(AmbiguousWriteError):
        c.create_organization({"name": "A"})
    assert len(s.requests) == 1


def test_post_timeout_is_ambiguous_and_not_retried():
    s = Script(httpx.ReadTimeout("read timed out"), ok({"id": 9}))
    c, _ = make(s)
    with pytest.raises(AmbiguousWriteError) as e:
        c.create_deal({"title": "A"})
    assert e.value.status is None and len(s.requests) == 1


def test_post_connect_error_is_retried_since_nothing_was_sent():
    s = Script(httpx.ConnectError("refused"), ok({"id": 9, "title": "A"}))
    c, _ = make(s)
    assert c.create_deal({"title": "A"}).id == 9
    assert len(s.requests) == 2


def test_post_429_is_retried_after_waiting():
    s = Script((429, {"success": False, "error": "Request over limit"},
                {"x-ratelimit-limit": "40", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"}),
               ok({"id": 5, "name": "A"}))
    c, clock = make(s)
    t0 = clock.t
    rid, created = c.create_idempotent("organization", {"name": "A"}, find_existing=lambda: pytest.fail("no lookup"))
    assert (rid, created) == (5, True)
    assert len(s.requests) == 2 and clock.t - t0 >= 2.0
    assert c.rate_limited_responses == 1
    assert c.usage["POST /api/v2/organizations"] == {"requests": 2, "tokens": 5}  # 429 costs nothing


def test_create_idempotent_finds_a_committed_record():
    s = Script((503, {"success": False, "error": "unavailable"}), ok({"id": 99}))
    c, _ = make(s)
    calls = []
    rid, created = c.create_idempotent("organization", {"name": "A"},
                                       find_existing=lambda: calls.append(1) or 41)
    assert (rid, created) == (41, False)
    assert len(s.requests) == 1 and calls == [1]


def test_create_idempotent_retries_when_nothing_was_written():
    s = Script((500, {"success": False}), httpx.RemoteProtocolError("dropped"), ok({"id": 77, "name": "A"}))
    c, _ = make(s)
    looked = []
    rid, created = c.create_idempotent("organization", {"name": "A"}, find_existing=lambda: looked.append(1))
    assert (rid, created) == (77, True)
    assert len(looked) == 2 and len(s.requests) == 3


def test_create_idempotent_gives_up_after_max_attempts():
    s = Script((500, {"success": False}))
    c, _ = make(s)
    with pytest.raises(AmbiguousWriteError):
        c.create_idempotent("person", {"name": "P"}, find_existing=lambda: None, max_attempts=3)
    assert len(s.requests) == 3


def test_delete_after_lost_answer_treats_404_as_done():
    s = Script(httpx.ReadTimeout("timeout"), (404, {"success": False, "error": "Deal not found"}))
    c, _ = make(s)
    c.delete_deal(3)
    assert [r.method for r in s.requests] == ["DELETE", "DELETE"]


def test_plain_404_raises_not_found():
    s = Script((404, {"success": False, "error": "Deal not found"}))
    c, _ = make(s)
    with pytest.raises(NotFound, match="Deal not found"):
        c.delete_deal(3)


def test_403_block_waits_retry_after_then_succeeds():
    s = Script((403, {"success": False, "error": "Forbidden: too many requests after rate limit errors",
                      "code": "rate_limit_block"}, {"retry-after": "30"}), ok({"id": 1}))
    c, clock = make(s)
    t0 = clock.t
    c.get_person(1)
    assert clock.t - t0 >= 30


def test_403_feature_capping_is_not_retried():
    s = Script((403, {"success": False, "error": "Custom field limit reached", "code": "feature_capping_custom_fields"}))
    c, _ = make(s)
    with pytest.raises(PipedriveError) as e:
        c.create_field("deal", {"field_name": "X", "field_type": "varchar"})
    assert e.value.status == 403 and not isinstance(e.value, RateLimited)
    assert len(s.requests) == 1


def test_persistent_429_ends_in_rate_limited():
    s = Script((429, {"success": False, "error": "Request over limit"}, {"x-ratelimit-reset": "1"}))
    c, _ = make(s, max_rate_limit_retries=2)
    with pytest.raises(RateLimited):
        c.get_person(1)
    assert len(s.requests) == 3


def test_server_echoing_the_token_is_scrubbed():
    s = Script((400, {"success": False, "error": f"bad token {TOKEN}", "error_info": TOKEN}))
    c, _ = make(s)
    with pytest.raises(PipedriveError) as e:
        c.get_person(1)
    assert TOKEN not in str(e.value) and TOKEN not in repr(e.value) and "***" in str(e.value)


def test_cursor_pagination_and_ids_chunks():
    pages = [
        ok([{"id": 1}, {"id": 2}], additional_data={"next_cursor": "c2"}),
        ok([{"id": 3}], additional_data={"next_cursor": None}),
    ]
    s = Script(*pages)
    c, _ = make(s)
    assert [o.id for o in c.list_organizations(updated_since="2025-01-01T00:00:00Z")] == [1, 2, 3]
    assert s.requests[0].url.params["updated_since"] == "2025-01-01T00:00:00Z"
    assert s.requests[0].url.params["limit"] == "500"
    assert s.requests[1].url.params["cursor"] == "c2"

    s2 = Script(ok([], additional_data={"next_cursor": None}))
    c2, _ = make(s2)
    list(c2.list_deals(ids=range(1, 251)))
    assert [len(r.url.params["ids"].split(",")) for r in s2.requests] == [100, 100, 50]


def test_v1_offset_pagination():
    s = Script(
        ok([{"id": 1}], additional_data={"pagination": {"more_items_in_collection": True, "next_start": 1}}),
        ok([{"id": 2}], additional_data={"pagination": {"more_items_in_collection": False}}),
    )
    c, _ = make(s)
    assert [n.id for n in c.list_notes(deal_id=4)] == [1, 2]
    assert [r.url.params["start"] for r in s.requests] == ["0", "1"]


def test_download_redirect_to_another_host_drops_the_token():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "acme.pipedrive.com":
            return httpx.Response(302, headers={"location": "https://files.example-s3.com/blob/1"})
        return httpx.Response(200, content=b"DATA")

    clock = FakeClock()
    c = PipedriveClient("https://acme.pipedrive.com", TOKEN, transport=httpx.MockTransport(handler),
                        clock=clock.monotonic, sleep=clock.sleep, wall_clock=clock.wall)
    assert c.download_file(1) == b"DATA"
    assert seen[0].headers["x-api-token"] == TOKEN
    assert "x-api-token" not in seen[1].headers


def test_files_over_25_mb_are_refused_before_sending():
    s = Script(ok({"id": 1}))
    c, _ = make(s)
    from flitstack_dagster.core.errors import UserError

    with pytest.raises(UserError, match="25 MB"):
        c.upload_file(b"x" * (25 * 1024 * 1024 + 1), file_name="big.bin", deal_id=1)
    assert s.requests == []


def test_v1_prefix_can_be_api_v1_with_the_same_costs():
    s = Script(ok([{"id": 1, "name": "Call"}]))
    c, _ = make(s, v1_prefix="/api/v1")
    c.list_activity_types()
    assert str(s.requests[0].url) == "https://acme.pipedrive.com/api/v1/activityTypes"
    assert c.usage == {"GET /v1/activityTypes": {"requests": 1, "tokens": 20}}


# -- 429: daily budget or burst, from the headers Pipedrive documents -------------------------------
OVER_LIMIT = {"success": False, "error": "Request over limit", "data": None, "additional_data": None}


def test_429_with_no_daily_requests_left_is_a_spent_budget():
    s = Script((429, OVER_LIMIT, {"retry-after": "1", "x-daily-requests-left": "0"}))
    c, clock = make(s)  # 12:00 UTC
    with pytest.raises(DailyBudgetSpent) as err:
        c.get_person(1)
    assert err.value.source == "server" and len(s.requests) == 1 and clock.sleeps == []
    assert "resets at 2026-03-11 00:00 UTC" in str(err.value)
    with pytest.raises(DailyBudgetSpent):  # refused in the client until the reset: nothing sent
        c.get_person(2)
    assert len(s.requests) == 1


def test_429_whose_retry_after_reaches_the_next_day_is_a_spent_budget():
    s = Script((429, OVER_LIMIT, {"retry-after": str(12 * 3600 + 1)}))  # at 12:00 UTC: until midnight
    c, clock = make(s)
    with pytest.raises(DailyBudgetSpent):
        c.get_person(1)
    assert len(s.requests) == 1 and clock.sleeps == []


def test_body_wording_does_not_make_a_burst_429_a_spent_budget():
    body = {**OVER_LIMIT, "error_info": "Daily token budget exhausted", "code": "daily_token_budget_exceeded"}
    s = Script((429, body, {"retry-after": "2", "x-daily-requests-left": "9999"}), ok({"id": 1, "name": "P"}))
    c, clock = make(s)
    assert c.get_person(1).id == 1
    assert len(s.requests) == 2 and clock.sleeps and clock.sleeps[-1] >= 2.0


def test_a_long_wait_that_is_not_the_budget_ends_in_rate_limited_without_sleeping_it():
    s = Script((429, OVER_LIMIT, {"retry-after": "3600"}))  # an hour, at 12:00 UTC: not the daily reset
    c, clock = make(s)
    with pytest.raises(RateLimited):
        c.get_person(1)
    assert len(s.requests) == 1 and all(w < 3600 for w in clock.sleeps)


def test_a_burst_429_a_second_before_midnight_is_still_a_burst():
    from datetime import UTC, datetime

    clock = FakeClock(wall=datetime(2026, 3, 10, 23, 59, 59, tzinfo=UTC).timestamp() - 1000.0)
    s = Script((429, OVER_LIMIT, {"retry-after": "2"}), ok({"id": 1, "name": "P"}))
    c, _ = make(s, clock)
    assert c.limiter.budget_refusal({"retry-after": "2"}) is False
    assert c.limiter.budget_refusal({"retry-after": "90"}) is True  # a wait past midnight that no burst needs
    assert c.get_person(1).id == 1 and len(s.requests) == 2  # waited 2 s and retried, into the next day
