"""Injected failures: Stripe answering an error, before or after it did the work."""

from dataclasses import dataclass


@dataclass
class Fault:
    """The next `count` API requests whose method matches (`*`: any) and whose path starts with
    `path_prefix` fail with `status`.

    `after=False`: the error is answered and nothing happens (Stripe was down).
    `after=True`: the request is carried out and its success stored as the idempotent result,
    but the client gets the error (the response was lost after Stripe acted): a retry with the
    same `Idempotency-Key` gets the stored success, a retry without one acts a second time.
    """

    method: str
    path_prefix: str
    status: int = 500
    count: int = 1
    after: bool = False

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and self.method in (method.upper(), "*") and path.startswith(self.path_prefix)


class FaultList:
    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        fault.method = fault.method.upper()
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def take(self, method: str, path: str, after: bool) -> Fault | None:
        """The first armed fault for this request and moment, used up by one."""
        for fault in self.faults:
            if fault.after == after and fault.matches(method, path):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None
