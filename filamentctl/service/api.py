"""What the service's parts may use of the service: a typed interface, not the class.

The socket handlers (``service.handlers``), the live reload (``service.reload``) and the
notifier's wiring (``service.notify``) are written against :class:`ServiceAPI`, which
:class:`~filamentctl.service.app.Service` implements. They never import the composition root,
so the root can import them without a cycle, and each sees only what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from filamentctl.hw.simulated import SimulatedBox
    from filamentctl.paths import Paths
    from filamentctl.service.bus import EventBus
    from filamentctl.service.control import ControlLoop
    from filamentctl.service.delivery import DeliveryWorker
    from filamentctl.service.drying import DryingManager
    from filamentctl.service.notify import Notifier
    from filamentctl.service.sampler import Sampler
    from filamentctl.store.history import History


class ServiceAPI(Protocol):
    """One running box, as its parts see it."""

    settings: dict[str, object]
    overrides: dict[str, object]
    paths: Paths
    bus: EventBus
    clock: Callable[[], float]
    wall_ns: Callable[[], int]
    simulate: bool
    box: SimulatedBox | None
    drying: DryingManager | None
    notifier: Notifier | None

    @property
    def control(self) -> ControlLoop: ...

    @property
    def history(self) -> History: ...

    @property
    def sampler(self) -> Sampler: ...

    @property
    def delivery(self) -> DeliveryWorker | None: ...

    @property
    def stopping(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...

    def publish_storage(self, name: str, data: Any) -> None: ...

    def swap_delivery(self, settings: Mapping[str, object]) -> None: ...
