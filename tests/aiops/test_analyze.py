"""POST /api/v1/aiops/analyze on crafted series: a trend, a seasonal series with a spike, a level shift;
references to stored host, sensor and custom series; every kind of bad input is a readable 400/413."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from monitoring.models import Host, HostSample
from sensors.models import Reading, Sensor

URL = "/api/v1/aiops/analyze"
T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


def stamps(n: int, step: timedelta = timedelta(minutes=5)) -> list[str]:
    return [(T0 + i * step).isoformat() for i in range(n)]


def post(client: APIClient, body: dict[str, Any]) -> Any:
    return client.post(URL, body, format="json")


@pytest.mark.django_db
def test_trend_is_found_with_its_slope_and_significance(token_client: APIClient) -> None:
    rng = np.random.default_rng(1)
    n = 600  # 50 hours at 5 minutes
    values = 20 + 0.5 * np.arange(n) / 12 + rng.normal(0, 0.3, n)  # +0.5 per hour
    response = post(token_client, {"timestamps": stamps(n), "values": values.tolist(), "methods": ["zscore"]})
    assert response.status_code == 200, response.content
    body = response.json()
    trend = body["trend"]
    assert trend["slope_per_hour"] == pytest.approx(0.5, rel=0.05)
    assert trend["slope_low_per_second"] < trend["slope_per_second"] < trend["slope_high_per_second"]
    assert trend["mann_kendall"]["trend"] == "increasing"
    assert trend["mann_kendall"]["p_value"] < 1e-6
    # the forecast continues the trend, inside an interval that contains it
    forecast = body["forecast"]
    assert len(forecast["values"]) == 12
    expected_next = 20 + 0.5 * n / 12
    assert forecast["values"][0] == pytest.approx(expected_next, abs=1.0)
    assert all(lo < v < hi for lo, v, hi in zip(forecast["lower"], forecast["values"], forecast["upper"], strict=True))
    assert forecast["values"][-1] > forecast["values"][0]
    assert body["summary"]["count"] == n
    assert body["points"] == n


@pytest.mark.django_db
def test_seasonal_series_with_a_spike(token_client: APIClient) -> None:
    rng = np.random.default_rng(2)
    n = 288 * 4  # four days of 5-minute points
    phase = 2 * np.pi * np.arange(n) / 288
    values = 50 + 20 * np.sin(phase) + rng.normal(0, 1, n)
    spike = 288 * 3 + 100
    values[spike] += 40
    body = {"timestamps": stamps(n), "values": values.tolist(), "methods": ["ensemble", "zscore"]}
    response = post(token_client, body)
    assert response.status_code == 200, response.content
    body = response.json()
    ensemble = body["detection"]["ensemble"]
    assert len(ensemble["scores"]) == n
    assert len(ensemble["flags"]) == n
    assert ensemble["flags"][spike] is True
    assert [e["peak_at"] for e in ensemble["episodes"]].count(stamps(n)[spike].replace("+00:00", "+00:00")) == 1
    assert ensemble["flagged"] <= 5  # the daily swing itself is not anomalous
    # STL with the default period (one day at the 5-minute step) separates the swing
    seasonal = body["seasonal"]
    assert seasonal["period"] == 288
    assert len(seasonal["trend"]) == len(seasonal["seasonal"]) == len(seasonal["residual"]) == n
    assert np.ptp(seasonal["seasonal"][288:576]) == pytest.approx(40, abs=4)
    assert seasonal["residual"][spike] == pytest.approx(40, abs=5)
    assert np.ptp(seasonal["trend"]) < 3
    # the trend is read on the seasonally adjusted series: the swing is no trend (Mann-Kendall on the raw
    # sine says "decreasing" with p ~ 1e-10)
    assert body["trend"]["series"] == "seasonally adjusted"
    assert abs(body["trend"]["slope_per_hour"]) < 0.05
    assert body["trend"]["mann_kendall"]["p_value"] > 0.01
    # the forecast repeats the cycle: the next point continues the sine
    assert body["forecast"]["values"][0] == pytest.approx(50 + 20 * np.sin(2 * np.pi * n / 288), abs=3)


@pytest.mark.django_db
def test_level_shift_is_an_episode(token_client: APIClient) -> None:
    rng = np.random.default_rng(3)
    n = 400
    values = np.where(np.arange(n) < 300, 10.0, 25.0) + rng.normal(0, 0.5, n)
    response = post(token_client, {"timestamps": stamps(n), "values": values.tolist(), "methods": "zscore"})
    assert response.status_code == 200, response.content
    zscore = response.json()["detection"]["zscore"]
    assert zscore["flags"][300] is True
    assert not any(zscore["flags"][:300])
    first = zscore["episodes"][0]
    assert first["start"] == stamps(n)[300]
    assert first["points"] >= 1
    summary = response.json()["summary"]
    assert summary["median"] == pytest.approx(10, abs=0.5)  # robust: the shifted quarter does not move it


@pytest.mark.django_db
def test_reference_to_host_sensor_and_custom_series(token_client: APIClient) -> None:
    host = Host.objects.create(name="web-1")
    zero = ["load_1", "load_5", "load_15", "memory_available_bytes", "swap_total_bytes", "swap_used_bytes",
            "swap_percent", "disk_read_bytes_per_second", "disk_write_bytes_per_second", "net_sent_bytes_per_second",
            "net_recv_bytes_per_second"]  # fmt: skip
    common = {"cpu_per_core": [], "memory_total_bytes": 1, "memory_used_bytes": 1, "memory_percent": 50,
              "disk_percent": 10, **dict.fromkeys(zero, 0)}  # fmt: skip
    HostSample.objects.bulk_create(
        [HostSample(host=host, ts=T0 + timedelta(minutes=i), cpu_percent=float(i % 7), **common) for i in range(100)]
    )
    sensor = Sensor.objects.create(code="001")
    Reading.objects.bulk_create(
        [Reading(sensor=sensor, ts=T0 + timedelta(minutes=i), flow=5.0 + i % 3, pressure=3.0) for i in range(50)]
    )
    window = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=3)).isoformat(), "methods": ["zscore"]}
    host_answer = post(token_client, {"metric": "host.cpu_percent", "host": "web-1", **window})
    assert host_answer.status_code == 200, host_answer.content
    assert host_answer.json()["points"] == 100
    sensor_answer = post(token_client, {"metric": "sensor.flow", "sensor": "001", **window})
    assert sensor_answer.status_code == 200
    assert sensor_answer.json()["summary"]["max"] == 7.0

    points = [{"name": "queue_depth", "labels": {"q": "a"}, "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
               "value": i} for i in range(30)]  # fmt: skip
    assert token_client.post("/api/v1/aiops/metrics/", {"points": points}, format="json").status_code == 201
    custom = post(token_client, {"metric": "queue_depth", "labels": {"q": "a"}, **window})
    assert custom.status_code == 200, custom.content
    assert custom.json()["trend"]["slope_per_second"] == pytest.approx(1 / 60)

    unknown = post(token_client, {"metric": "no_such_metric", **window})
    assert unknown.status_code == 400
    assert "unknown metric 'no_such_metric'" in unknown.json()["message"]
    builtin_typo = post(token_client, {"metric": "host.cpu", "host": "web-1", **window})
    assert builtin_typo.status_code == 400
    assert "unknown built-in metric" in builtin_typo.json()["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"timestamps": stamps(5), "values": [1, 2, 3]}, "timestamps has 5 items but values has 3"),
        ({"timestamps": stamps(4), "values": [1, 2, "x", 4]}, "values[2]: value 'x' is not a number"),
        ({"timestamps": [*stamps(3)[:1], stamps(3)[2], stamps(3)[1]], "values": [1, 2, 3]}, "timestamps[2] is out of"),
        ({"timestamps": [*stamps(2), stamps(2)[1]], "values": [1, 2, 3]}, "timestamps[2] is duplicated"),
        ({"timestamps": ["yesterday", *stamps(2)], "values": [1, 2, 3]}, "timestamp 'yesterday' is not ISO 8601"),
        ({"timestamps": stamps(5), "values": [1, 2, 3, 4, 5], "methods": ["magic"]}, "unknown method 'magic'"),
        ({"timestamps": stamps(5), "values": [1, 2, 3, 4, 5], "period": 4}, "period 4 needs"),
        ({"values": [1, 2]}, "give timestamps and values"),
    ],
)
def test_bad_input_is_a_readable_400(token_client: APIClient, body: dict[str, Any], message: str) -> None:
    response = post(token_client, body)
    assert response.status_code == 400, response.content
    assert message in response.json()["message"]


@pytest.mark.django_db
def test_limits_and_throttle(token_client: APIClient) -> None:
    with override_settings(AIOPS_ANALYZE_MAX_POINTS=100):
        response = post(token_client, {"timestamps": stamps(101), "values": list(range(101))})
        assert response.status_code == 400
        assert "limit of 100 points" in response.json()["message"]
    with override_settings(AIOPS_ANALYZE_MAX_BYTES=1000):
        response = post(token_client, {"timestamps": stamps(100), "values": list(range(100))})
        assert response.status_code == 413
        assert "limit is 1000" in response.json()["message"]
    for bad in (b'{"values": [NaN]}', b'{"values": [1e309]}', b'{"values": [Infinity]}'):
        not_json = token_client.post(URL, bad, content_type="application/json")
        assert not_json.status_code == 400
        assert "JSON parse error" in not_json.json()["message"]
    cache.clear()  # the throttle counts every request above
    with override_settings(AIOPS_ANALYZE_THROTTLE="2/min"):
        codes = [post(token_client, {"timestamps": stamps(5), "values": [1, 2, 3, 4, 5]}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert APIClient().post(URL, {"timestamps": stamps(5), "values": [1, 2, 3, 4, 5]}, format="json").status_code == 401
