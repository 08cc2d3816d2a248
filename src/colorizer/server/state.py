"""What every route shares: the settings, the model pool, the temp area, the work queues and
the memory budget."""

from __future__ import annotations

from dataclasses import dataclass

from colorizer.pipeline import Colorizer
from colorizer.server.errors import ApiError
from colorizer.server.jobs import ImageWorkers, Janitor, JobQueue, MemoryBudget, TempArea
from colorizer.server.models import ModelPool
from colorizer.server.settings import ServerSettings

MIN_SIZE = 8  # the smallest network side a request may ask for


@dataclass
class ServerState:
    settings: ServerSettings
    pool: ModelPool
    temp: TempArea
    images: ImageWorkers
    memory: MemoryBudget
    jobs: JobQueue
    janitor: Janitor

    def close(self) -> None:
        self.janitor.stop()
        self.jobs.close()
        self.images.shutdown()
        self.temp.remove()

    def colorizer(self, model: str | None, size: int | None) -> Colorizer:
        """The shared model ``model`` (default: the server's) at network side ``size``."""
        limit = self.settings.max_network_size
        if size is not None and not MIN_SIZE <= size <= limit:
            raise ApiError(400, f"size {size} is out of range: {MIN_SIZE}..{limit}")
        return self.pool.get(model, size)
