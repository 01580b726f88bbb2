"""A step attempt's logs on AWS: the engine's functions log JSON to one CloudWatch Logs group
(its template's FunctionLogGroup), a team's step functions to their own (``/aws/lambda/<name>``
unless their LoggingConfig says otherwise); each line of an attempt carries ``run_id``,
``step_id`` and ``attempt``, and a Logs Insights query over those groups finds them. The API
links to the query in the console rather than reading logs itself (no logs:StartQuery on its
role, and a query takes seconds)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from stepwell.runtime.ports import AttemptLogs

MARGIN = timedelta(minutes=1)
"""Around an attempt's start and end: clocks and log delivery are not exact."""
SINCE = timedelta(hours=1)
"""How far back to look when the attempt's start is not known."""
GROUPS = 50
"""The most log groups one Logs Insights query reads."""


class InsightsLinks:
    """Links to the Logs Insights query of a step attempt (the StepLogs port on AWS)."""

    def __init__(self, region: str, log_group: str) -> None:
        self.region = region
        self.log_group = log_group

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InsightsLinks | None:
        """From the function's own environment: Lambda names its log group (the stack's
        shared one) and region; None outside Lambda."""
        env = os.environ if environ is None else environ
        group = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        return cls(region, group) if group and region else None

    def attempt(
        self,
        run_id: str,
        key: str,
        attempt: int,
        since: datetime | None,
        until: datetime | None,
        functions: Sequence[str] = (),
    ) -> AttemptLogs:
        query = (
            "fields @timestamp, level, message, function_name, @logStream\n"
            f'| filter run_id = "{_text(run_id)}" and step_id = "{_text(key)}" '
            f"and attempt = {int(attempt)}\n"
            "| sort @timestamp asc\n| limit 1000"
        )
        end = (until + MARGIN) if until is not None else None
        start = (since - MARGIN) if since is not None else None
        groups = [self.log_group]
        for arn in functions:
            group = f"/aws/lambda/{function_name(arn)}"
            if group not in groups and len(groups) < GROUPS:
                groups.append(group)
        where = "CloudWatch Logs, log group " + self.log_group
        if len(groups) > 1:
            where += f" and those of the run's {len(groups) - 1} function(s)"
        return AttemptLogs(where=where, link=self.link(query, start, end, groups))

    def link(
        self,
        query: str,
        start: datetime | None,
        end: datetime | None,
        groups: Sequence[str] = (),
    ) -> str:
        """The console's Logs Insights page with ``query`` over the log groups (the engine's
        unless given), ready to run."""
        if start is not None:
            span = f"end~'{_iso(end) if end else _iso(start + SINCE)}~start~'{_iso(start)}"
            span += "~timeType~'ABSOLUTE~tz~'UTC"
        else:
            span = f"end~0~start~-{int(SINCE.total_seconds())}~timeType~'RELATIVE~unit~'seconds"
        sources = "".join(f"~'{_rison(group)}" for group in groups or [self.log_group])
        detail = f"~({span}~editorString~'{_rison(query)}~source~({sources}))"
        # The console reads its state from the fragment, with ? and = written $3F and $3D.
        fragment = "logsV2:logs-insights" + quote("?queryDetail=", safe="").replace("%", "$")
        fragment += quote(detail, safe="~'()*!").replace("%", "$")
        host = f"https://{self.region}.console.aws.amazon.com"
        return f"{host}/cloudwatch/home?region={self.region}#{fragment}"


def function_name(arn: str) -> str:
    """A function's name from its ARN (a version's or alias's too), or the name as given."""
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 and parts[0] == "arn" else arn


def _text(value: str) -> str:
    """A value inside a double-quoted Logs Insights string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _iso(moment: datetime) -> str:
    """A moment as the console's state writes it (UTC, escaped as a string of it)."""
    return _rison(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"))


def _rison(text: str) -> str:
    """A string as the console's state encodes it: URL-escaped, with * for %."""
    return quote(text, safe="").replace("%", "*")
