"""The generator as a page source: mock data paged like the API, with no network."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from company_activity.ingest.pages import FetchStats, Page
from company_activity.mock import data as mock_data

DEFAULT_MOCK_SEED = 42
DEFAULT_MOCK_COMPANIES = 50
DEFAULT_MOCK_PAGE_SIZE = 1000


class GeneratorSource:
    """mock_data's deterministic usage, paged like the API (no network, any date, any size)."""

    def __init__(
        self,
        seed: int = DEFAULT_MOCK_SEED,
        n_companies: int = DEFAULT_MOCK_COMPANIES,
        page_size: int = DEFAULT_MOCK_PAGE_SIZE,
    ) -> None:
        self.seed = seed
        self.n_companies = n_companies
        self.page_size = max(1, page_size)

    def pages(self, day: date, stats: FetchStats) -> Iterator[Page]:
        starts = range(0, max(self.n_companies, 1), self.page_size)
        for number, start in enumerate(starts, 1):
            lines = mock_data.usage_lines(
                self.seed, self.n_companies, day, start, start + self.page_size
            )
            stats.pages += 1
            yield Page(number, lines)
