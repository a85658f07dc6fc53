"""Read a gateway's /metrics the way Prometheus would: over HTTP, parsed by prometheus-client's own parser."""

from __future__ import annotations

import httpx2
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape: `scrape.value(sample_name, **labels)` is the sample's value, 0.0 when absent."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        for sample in self.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        return 0.0


async def scrape(base_url: str) -> Scrape:
    async with httpx2.AsyncClient() as http:
        response = await http.get(base_url + "/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return Scrape(response.text)
