"""The roles workflows name for their service calls (Step Functions' ``RoleArn``, and a Task's
``Credentials``): the runner assumes one with STS and makes the run's calls with its
credentials, so the engine's own role does not grow with every service a team uses.

Credentials are kept per role and run until a few minutes before they expire: a run's calls
assume once per container, and the session is named after the run, so CloudTrail tells which
run made a call. The stack lets the runner assume only the roles its ``WorkflowRoles``
parameter names.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from stepwell.runtime.clock import Clock, SystemClock

REFRESH_BEFORE = timedelta(minutes=5)
"""Credentials this close to their expiry are renewed before a call (a call may take long)."""
HELD = 256
"""The most (role, run) credentials a container keeps; the least recently used go first."""
RETRYABLE = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded"})
_NOT_IN_NAME = re.compile(r"[^\w+=,.@-]")


class RoleNotAssumed(Exception):
    """STS refused to give the role's credentials (its trust policy, or the runner's)."""

    def __init__(self, role: str, why: str, retryable: bool) -> None:
        super().__init__(f"the role {role} could not be assumed: {why}")
        self.role = role
        self.retryable = retryable


def session_name(run_id: str) -> str:
    """The role session's name: the run, in the characters and length STS allows."""
    return ("stepwell-" + _NOT_IN_NAME.sub("-", run_id))[:64]


@dataclass
class _Assumed:
    session: boto3.Session
    expires: datetime
    clients: dict[str, Any] = field(default_factory=dict)


class AssumedRoles:
    """boto3 clients that call as a role, per run."""

    def __init__(self, sts: Callable[[], Any] | None = None, clock: Clock | None = None) -> None:
        self._sts = sts or (lambda: boto3.client("sts"))
        self._clock = clock or SystemClock()
        self._held: OrderedDict[tuple[str, str], _Assumed] = OrderedDict()

    def client(self, service: str, role: str, run_id: str) -> Any:
        """A client of ``service`` (boto3's name) with ``role``'s credentials for ``run_id``."""
        held = self._hold(role, run_id)
        if service not in held.clients:
            held.clients[service] = held.session.client(service)  # type: ignore[call-overload]
        return held.clients[service]

    def credentials(self, role: str, run_id: str) -> Credentials:
        """``role``'s credentials for ``run_id`` (to sign a request that is no AWS API call,
        as SigV4Auth does with a client's)."""
        found = self._hold(role, run_id).session.get_credentials()
        assert found is not None  # a session made of an STS answer always has them
        return found

    def _hold(self, role: str, run_id: str) -> _Assumed:
        """The role's session for the run: kept, or assumed again near its expiry."""
        key = (role, run_id)
        held = self._held.get(key)
        if held is None or held.expires - self._clock.now() < REFRESH_BEFORE:
            held = self._assume(role, run_id)
            self._held[key] = held
            while len(self._held) > HELD:
                self._held.popitem(last=False)
        self._held.move_to_end(key)
        return held

    def _assume(self, role: str, run_id: str) -> _Assumed:
        try:
            answer = self._sts().assume_role(RoleArn=role, RoleSessionName=session_name(run_id))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "Unknown")
            why = f"{code}: {error.get('Message') or code}"
            raise RoleNotAssumed(role, why, code in RETRYABLE) from None
        except ParamValidationError as exc:  # not an ARN STS takes: retrying cannot help
            raise RoleNotAssumed(role, str(exc).replace("\n", " "), False) from None
        except BotoCoreError as exc:
            raise RoleNotAssumed(role, str(exc), True) from None
        given = answer["Credentials"]
        session = boto3.Session(
            aws_access_key_id=given["AccessKeyId"],
            aws_secret_access_key=given["SecretAccessKey"],
            aws_session_token=given["SessionToken"],
        )
        return _Assumed(session, given["Expiration"])
