"""The phases of `make bench` and the table they print.

One run measures, on this machine and under the same load generator:

1. the same call (a sandbox quotient familial) made directly to the cnaf service,
   through the bare pass-through proxy and through the full gateway, at high
   load (throughput, p50, p99, CPU per call of the serving process) and at
   concurrency 1 (the latency each hop adds);
2. the Redis commands the gateway sends per call (INFO commandstats over the high
   load run; SLOWLOG at low load, which tells a script's own commands from the
   client's round trips);
3. the rate limiter's accuracy: three gateways sharing one Redis and one token,
   hammered far over the token's limit;
4. the fan-out lookup over six providers each delayed by a fixed time, when the
   gateway implements Lookup.

The gateway keeps its journal in PostgreSQL (started here, at the lowest CPU priority,
standing for a database on a machine of its own); a second gateway, the same but for its
journal kept to the log event, runs in the same rounds as the path ``no journal``: the
difference is what the journal costs the call path (issue 15).

High load runs go round by round (direct, pass-through, gateway, then again) and
each path keeps its best round: on a shared machine, the best round is the one
least disturbed by the neighbours.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import secrets
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import redis

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import identity_pb2, options_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from bench.loadgen import OK, LoadResult, LoadSpec, run_load
from bench.mesh import client_commands_from_slowlog, command_counts, command_deltas
from contract.routes import contract_scopes
from devstack.processes import Child, Issuer, ProcessGroup
from devstack.redis import free_port
from gateway.journal.signing import generate as generate_journal_key

_ROOT = Path(__file__).resolve().parent.parent
QUOTIENT_FAMILIAL = "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"
LOOKUP = "/apiparticulier.gateway.v1.GatewayService/Lookup"
SIRET = "13002526500013"
"""The recipient of every call: a SIRET the gateway's check accepts."""
_BENCH_CLIENT = "bench"
_RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.name
_PROVIDER_SERVICES = ("c2s", "france_travail", "mesr", "cnous", "men")
NO_JOURNAL = "no journal"
"""The path of the gateway whose journal is its log event alone."""
_SLOWLOG_ENTRIES = 1_000_000

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Options:
    """How hard and how long each phase runs."""

    processes: int = 2
    concurrency: int = 32
    duration: float = 6.0
    warmup: float = 1.0
    rounds: int = 2
    low_load_duration: float = 4.0
    rate_limit: int = 50
    burst: int = 10
    hammer_seconds: float = 5.0
    fanout_delay_ms: float = 50.0
    log_dir: Path = field(default_factory=lambda: _ROOT / ".run" / "bench")


def lefebvre() -> identity_pb2.IdentityPivot:
    """The sandbox's LEFEBVRE Alexis, F, born 1982-12-27 abroad (99100): a CNAF allocataire."""
    return identity_pb2.IdentityPivot(
        nom_naissance="LEFEBVRE",
        prenoms=["Alexis"],
        annee_date_naissance=1982,
        mois_date_naissance=12,
        jour_date_naissance=27,
        sexe_etat_civil="F",
        code_cog_insee_pays_naissance="99100",
    )


def quotient_familial_request() -> bytes:
    """The benchmark's call: the quotient familial of `lefebvre`, this month."""
    return cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre()).SerializeToString()


def cnaf_scopes() -> frozenset[str]:
    """Every scope the cnaf contract names, on its methods or its response fields."""
    scopes: set[str] = set()
    file = cnaf_pb2.DESCRIPTOR
    for method in file.services_by_name["CnafService"].methods:
        options = method.GetOptions()
        if options.HasExtension(options_pb2.method_access):
            scopes.update(options.Extensions[options_pb2.method_access].scopes)
    for message in file.message_types_by_name.values():
        for message_field in message.fields:
            scope = message_field.GetOptions().Extensions[options_pb2.scope]
            if scope:
                scopes.add(scope)
    return frozenset(scopes)


# -- measurements -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathRun:
    """One load run against one path, with the serving process's CPU over it."""

    load: LoadResult
    cpu_seconds: float

    @property
    def cpu_us_per_call(self) -> float:
        """CPU time of the serving process per call it handled, warm-up included, in µs."""
        return self.cpu_seconds / max(1, self.load.statuses.total()) * 1e6


@dataclass(slots=True)
class Report:
    """Everything the run measured, filled in phase by phase."""

    options: Options
    high: dict[str, PathRun] = field(default_factory=dict)
    low: dict[str, PathRun] = field(default_factory=dict)
    redis_commands: dict[str, int] = field(default_factory=dict)
    redis_calls: int = 0
    round_trips: dict[str, int] = field(default_factory=dict)
    round_trip_calls: int = 0
    rate_limit: LoadResult | None = None
    lookup: LoadResult | None = None
    lookup_baseline: LoadResult | None = None
    notes: dict[str, str] = field(default_factory=dict)


def measure(child: Child, spec: LoadSpec) -> PathRun:
    """Run ``spec`` and read the CPU ``child`` spent meanwhile."""
    before = child.cpu_seconds()
    load = run_load(spec)
    return PathRun(load, child.cpu_seconds() - before)


def smoke(address: str, method: str, request: bytes, metadata: Sequence[tuple[str, str]]) -> grpc.StatusCode:
    """The status of one call, made before any load so that a broken setup fails loudly."""
    with grpc.insecure_channel(address) as channel:
        try:
            channel.unary_unary(method, request_serializer=None, response_deserializer=None)(
                request, timeout=10, metadata=tuple(metadata)
            )
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


# -- the run --------------------------------------------------------------------------------------


def run(options: Options, say: Callable[[str], None]) -> Report:
    """Start everything, run every phase, stop everything (also on error or Ctrl-C)."""
    report = Report(options)
    mesh = ProcessGroup(options.log_dir)
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as keys_dir:
        try:
            _Run(mesh, report, Path(keys_dir), say).all()
        finally:
            say("stopping every process")
            mesh.close()
    return report


class _Run:
    """The phases of one run, sharing the processes, the token issuer and the report."""

    def __init__(
        self, mesh: ProcessGroup, report: Report, keys_dir: Path, say: Callable[[str], None]
    ) -> None:
        self.mesh = mesh
        self.report = report
        self.options = report.options
        self.say = say
        self.keys_dir = keys_dir
        self.issuer: Issuer | None = None
        self.request = quotient_familial_request()
        self.recipient: Metadata = (("x-recipient", SIRET),)
        self.paths: dict[str, tuple[Child, Metadata]] = {}
        self.gateway_env: dict[str, str] = {}
        self.gateway: Child | None = None
        self.cnaf: Child | None = None
        self.redis: redis.Redis | None = None

    def all(self) -> None:
        """Every phase, in order."""
        self.start()
        self.high_load()
        self.low_load()
        gateway, issuer = self.started_gateway()
        self.mesh.stop(gateway)  # its CPU is the next phases' to use
        self.mesh.stop(self.paths[NO_JOURNAL][0])
        self.rate_limit(issuer)
        self.fan_out(issuer)

    def started_gateway(self) -> tuple[Child, Issuer]:
        """The gateway `start` started, and the issuer of its tokens.

        Raises:
            RuntimeError: `start` has not run.
        """
        if self.gateway is None or self.issuer is None:
            raise RuntimeError("the gateway is not started: run start() first")
        return self.gateway, self.issuer

    def start(self) -> None:
        """Redis, cnaf, the pass-through proxy and the gateway; one smoke call each."""
        redis_server = self.mesh.start_redis()
        self.say(f"redis on {redis_server.url}; logs in {self.options.log_dir}")
        # The journal as deployed: PostgreSQL with its defaults (fsync on), rows signed every 5 s.
        # At the lowest CPU priority: in production it has a machine of its own, and here it
        # must not take the two cores from the paths measured.
        postgres = self.mesh.start_postgres(niceness=19)
        journal_key, _ = generate_journal_key(self.keys_dir, "journal-signing")
        self.redis = redis.Redis.from_url(redis_server.url, client_name=_BENCH_CLIENT)
        cnaf = self.cnaf = self.mesh.start("cnaf", ["-m", "services.cnaf"])
        self.paths["direct"] = (cnaf, self.recipient)
        passthrough = self._passthrough("passthrough", cnaf.address)
        self.paths["pass-through"] = (passthrough, self.recipient)
        self.gateway_env = {
            "REDIS_URL": redis_server.url,
            "KEYS_DIR": str(self.keys_dir),
            "JOURNAL_HMAC_KEY": secrets.token_hex(32),
            "JOURNAL_DATABASE_URL": postgres.url,
            "JOURNAL_SIGNING_KEY_FILE": str(journal_key),
            "CNAF_ADDRESS": cnaf.address,
            "LOG_LEVEL": "info",
        }
        issuer = self.issuer = Issuer.create(self.keys_dir, redis_server.url)
        # A burst far above the concurrency and a huge rate: the limiter decides every call
        # (one round trip each) and admits them all.
        self.gateway = self.mesh.start(
            "gateway", ["-m", "gateway"], {**self.gateway_env, "RATE_LIMIT_BURST": "10000"}
        )
        token = issuer.issue(cnaf_scopes(), SIRET, rate_limit=1_000_000)
        authorized = (("authorization", f"Bearer {token}"), *self.recipient)
        self.paths["gateway"] = (self.gateway, authorized)
        # The same gateway with its journal kept to the log event: measured in the same rounds,
        # the difference is what the journal in PostgreSQL costs (issue 15).
        without_journal = {**self.gateway_env, "JOURNAL_DATABASE_URL": "", "RATE_LIMIT_BURST": "10000"}
        self.paths[NO_JOURNAL] = (
            self.mesh.start("gateway-no-journal", ["-m", "gateway"], without_journal),
            authorized,
        )
        for name, (child, metadata) in self.paths.items():
            status = smoke(child.address, QUOTIENT_FAMILIAL, self.request, metadata)
            if status is not grpc.StatusCode.OK:
                raise RuntimeError(f"the {name} path answers {status.name} to the benchmark's call")

    def spec(self, child: Child, metadata: Metadata, *, low_load: bool = False) -> LoadSpec:
        """The quotient familial call against ``child``: high load, or one call at a time."""
        options = self.options
        return LoadSpec(
            targets=(child.address,),
            method=QUOTIENT_FAMILIAL,
            request=self.request,
            metadata=metadata,
            processes=1 if low_load else options.processes,
            concurrency=1 if low_load else options.concurrency,
            duration=options.low_load_duration if low_load else options.duration,
            warmup=0.5 if low_load else options.warmup,
        )

    def high_load(self) -> None:
        """Each path in turn, round after round; each keeps its best round."""
        assert self.redis is not None  # noqa: S101 - set by start
        report = self.report
        for round_number in range(1, self.options.rounds + 1):
            for name, (child, metadata) in self.paths.items():
                self.say(f"high load, round {round_number}/{self.options.rounds}: {name}")
                before = command_counts(self.redis)
                result = measure(child, self.spec(child, metadata))
                deltas = command_deltas(before, command_counts(self.redis))
                best = report.high.get(name)
                if best is None or result.load.throughput > best.load.throughput:
                    report.high[name] = result
                    if name == "gateway":
                        report.redis_commands, report.redis_calls = deltas, result.load.statuses[OK]

    def low_load(self) -> None:
        """Each path at concurrency 1; Redis's SLOWLOG records the gateway's round trips meanwhile."""
        assert self.redis is not None  # noqa: S101 - set by start
        for name, (child, metadata) in self.paths.items():
            self.say(f"low load (concurrency 1): {name}")
            spec = self.spec(child, metadata, low_load=True)
            if name != "gateway":
                self.report.low[name] = measure(child, spec)
                continue
            # With a zero threshold SLOWLOG logs every command with its client's address,
            # which INFO commandstats cannot: the commands a script runs show as "?:0".
            self.redis.config_set("slowlog-log-slower-than", 0)
            self.redis.config_set("slowlog-max-len", _SLOWLOG_ENTRIES)
            self.redis.slowlog_reset()
            try:
                self.report.low[name] = measure(child, spec)
                entries = self.redis.slowlog_get(_SLOWLOG_ENTRIES)
            finally:
                self.redis.config_set("slowlog-log-slower-than", 10_000)
                self.redis.config_set("slowlog-max-len", 128)
                self.redis.slowlog_reset()
            self.report.round_trips = client_commands_from_slowlog(entries, _BENCH_CLIENT)
            self.report.round_trip_calls = self.report.low[name].load.statuses.total()

    def rate_limit(self, issuer: Issuer) -> None:
        """Three gateways, one Redis, one token with a low limit, called far over it."""
        options = self.options
        self.say(f"rate-limit accuracy: 3 gateways, {options.rate_limit}/s, burst {options.burst}")
        env = {**self.gateway_env, "RATE_LIMIT_BURST": str(options.burst), "GATEWAY_REPLICAS": "3"}
        replicas = [self.mesh.start(f"gateway-rl-{n}", ["-m", "gateway"], env) for n in (1, 2, 3)]
        token = issuer.issue(cnaf_scopes(), SIRET, rate_limit=options.rate_limit)
        self.report.rate_limit = run_load(
            LoadSpec(
                targets=tuple(replica.address for replica in replicas),
                method=QUOTIENT_FAMILIAL,
                request=self.request,
                metadata=(("authorization", f"Bearer {token}"), *self.recipient),
                processes=options.processes,
                concurrency=12,
                duration=options.hammer_seconds,
                warmup=0.0,
            )
        )
        for replica in replicas:
            self.mesh.stop(replica)

    def fan_out(self, issuer: Issuer) -> None:
        """Lookup latency over six providers that each take ``fanout_delay_ms`` to answer."""
        assert self.cnaf is not None  # noqa: S101 - set by start
        delay = self.options.fanout_delay_ms
        self.say(f"fan-out lookup: six providers delayed {delay:.0f} ms each")
        providers = {"cnaf": self.cnaf}
        for name in _PROVIDER_SERVICES:
            providers[name] = self.mesh.start(name, ["-m", f"services.{name}"])
        # One delaying proxy in front of all six: each call waits, then goes to its own provider.
        routes = {f"apiparticulier.{name}.": child.address for name, child in providers.items()}
        delayed = self._passthrough("delay-proxy", self.cnaf.address, routes, delay)
        addresses = {f"{name.upper()}_ADDRESS": delayed.address for name in providers}
        gateway = self.mesh.start("gateway-fanout", ["-m", "gateway"], {**self.gateway_env, **addresses})
        token = issuer.issue(contract_scopes(), SIRET, rate_limit=1_000_000)
        one_provider = self.spec(delayed, self.recipient, low_load=True)
        self.report.lookup_baseline = run_load(one_provider)
        self.report.lookup = run_load(
            dataclasses.replace(
                one_provider,
                targets=(gateway.address,),
                method=LOOKUP,
                request=lookup_request(),
                metadata=(("authorization", f"Bearer {token}"), *self.recipient),
            )
        )

    def _passthrough(
        self, name: str, upstream: str, routes: Mapping[str, str] | None = None, delay_ms: float = 0.0
    ) -> Child:
        port = free_port()
        argv = ["-m", "bench.passthrough", "--port", str(port), "--upstream", upstream]
        for prefix, address in (routes or {}).items():
            argv += ["--route", f"{prefix}={address}"]
        if delay_ms:
            argv += ["--delay-ms", str(delay_ms)]
        return self.mesh.start(name, argv, port=port)


def lookup_request() -> bytes:
    """A Lookup of `lefebvre` asking one API of each of the six providers."""
    request = gateway_pb2.LookupRequest(identite=lefebvre())
    # One API per provider; the parameters let France Travail and MEN be asked at all.
    request.apis.extend(
        [
            gateway_pb2.API_QUOTIENT_FAMILIAL,
            gateway_pb2.API_COMPLEMENTAIRE_SANTE_SOLIDAIRE,
            gateway_pb2.API_FRANCE_TRAVAIL_STATUT,
            gateway_pb2.API_STATUT_ETUDIANT,
            gateway_pb2.API_ETUDIANT_BOURSIER,
            gateway_pb2.API_SCOLARITE,
        ]
    )
    request.parameters.annee_scolaire = f"{dt.date.today().year - 1}-{dt.date.today().year}"
    request.parameters.identifiant_france_travail = "bench"
    return request.SerializeToString()


# -- the table --------------------------------------------------------------------------------------


def render(report: Report) -> str:
    """The run as one plain-text table, with the targets of issue 6 checked."""
    options = report.options
    lines: list[str] = []
    add = lines.append
    add(
        f"high load: {options.processes} client processes x {options.concurrency} in flight, "
        f"{options.duration:.0f} s measured after {options.warmup:.0f} s warm-up, "
        f"best of {options.rounds} rounds"
    )
    add(f"{'path':<14}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'CPU µs/call':>13}")
    for name in ("direct", "pass-through", "gateway", NO_JOURNAL):
        path_run = report.high.get(name)
        if path_run is None:
            add(f"{name:<14}{report.notes.get('gateway', 'not measured'):>49}")
            continue
        load = path_run.load
        add(
            f"{name:<14}{load.throughput:>10.0f}{load.p50_ms():>9.2f}{load.p99_ms():>9.2f}"
            f"{load.errors:>8}{path_run.cpu_us_per_call:>13.0f}"
        )
    gateway, direct, passthrough = (report.high.get(n) for n in ("gateway", "direct", "pass-through"))
    if gateway and direct and passthrough:
        to_direct = gateway.load.throughput / direct.load.throughput
        to_pass = gateway.load.throughput / passthrough.load.throughput
        add(
            f"gateway/direct {to_direct:.2f}   gateway/pass-through {to_pass:.2f}  "
            f"{_check(to_pass >= 0.6, '>= 0.6')}"
        )
    add(_journal_line(report))
    add("")
    add(f"low load: 1 client, 1 in flight, {options.low_load_duration:.0f} s")
    add(f"{'path':<14}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, path_run in report.low.items():
        load = path_run.load
        add(f"{name:<14}{load.throughput:>10.0f}{load.p50_ms():>9.3f}{load.p99_ms():>9.3f}{load.errors:>8}")
    if "gateway" in report.low:
        added = report.low["gateway"].load.p50_ms() - report.low["direct"].load.p50_ms()
        over_pass = report.low["gateway"].load.p50_ms() - report.low["pass-through"].load.p50_ms()
        add(
            f"latency the gateway adds at p50: {added:.3f} ms over direct "
            f"({over_pass:.3f} ms over pass-through)  {_check(added < 1.0, '< 1 ms')}"
        )
    add("")
    add(_redis_lines(report))
    if gateway is not None:
        per_call = gateway.cpu_us_per_call
        add(
            f"gateway CPU per call: {per_call:.0f} µs (user+system, all threads), "
            f"so about {1e6 / per_call:.0f} calls/s per core"
        )
    add("")
    add(_rate_limit_line(report))
    add(_lookup_line(report))
    return "\n".join(lines)


def _journal_line(report: Report) -> str:
    """The gateway with its journal in PostgreSQL against the same gateway without, in the same run."""
    with_journal, without = report.high.get("gateway"), report.high.get(NO_JOURNAL)
    if with_journal is None or without is None:
        return "journal in PostgreSQL: not measured"
    low_with, low_without = report.low.get("gateway"), report.low.get(NO_JOURNAL)
    latency = ""
    if low_with is not None and low_without is not None:
        latency = f", low-load p50 {low_with.load.p50_ms() - low_without.load.p50_ms():+.3f} ms"
    ratio = with_journal.load.throughput / without.load.throughput
    return (
        f"journal in PostgreSQL: gateway/no journal {ratio:.2f}, "
        f"CPU {with_journal.cpu_us_per_call - without.cpu_us_per_call:+.0f} µs/call{latency}"
    )


def _redis_lines(report: Report) -> str:
    if not report.round_trips or not report.redis_calls:
        return "Redis commands per call: " + report.notes.get("gateway", "not measured")
    scripts = report.redis_commands.get("evalsha", 0) + report.redis_commands.get("eval", 0)
    per_call = _per_call(report.redis_commands, report.redis_calls)
    round_trips = sum(report.round_trips.values()) / report.round_trip_calls
    on_path = sum(v for v in report.round_trips.values() if v >= report.round_trip_calls / 2)
    return (
        f"Redis, high load (INFO commandstats / {report.redis_calls} OK calls): "
        f"EVALSHA+EVAL {scripts / report.redis_calls:.3f} per call; all commands {per_call}\n"
        f"Redis, low load (SLOWLOG, client commands only / {report.round_trip_calls} calls): "
        f"{round_trips:.3f} per call ({_per_call(report.round_trips, report.round_trip_calls)})  "
        f"{_check(on_path == report.round_trip_calls, 'one round trip per call')}"
    )


def _per_call(counts: dict[str, int], calls: int) -> str:
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {count / calls:.3f}" for name, count in ordered)


def _rate_limit_line(report: Report) -> str:
    options = report.options
    result = report.rate_limit
    if result is None:
        return "rate-limit accuracy: " + report.notes.get("rate_limit", "not measured")
    admitted = result.statuses[OK]
    refused = result.statuses[_RESOURCE_EXHAUSTED]
    other = {name: count for name, count in result.statuses.items() if name not in {OK, _RESOURCE_EXHAUSTED}}
    allowed = options.rate_limit * result.span + options.burst
    return (
        f"rate-limit accuracy (3 gateways, one token, {options.rate_limit}/s, burst {options.burst}, "
        f"{result.span:.2f} s, {result.statuses.total() / result.span:.0f} calls/s offered): "
        f"admitted {admitted}, allowed {allowed:.0f} (rate x time + burst), refused {refused}, "
        f"other {other or 0}  "
        f"{_check(admitted <= allowed, 'admitted <= allowed')}"
    )


def _lookup_line(report: Report) -> str:
    if report.lookup is None or report.lookup_baseline is None:
        return "fan-out lookup over six delayed providers: " + report.notes.get("lookup", "not measured")
    delay = report.options.fanout_delay_ms
    slowest = report.lookup_baseline.p50_ms()
    lookup = report.lookup
    if lookup.ok == 0:
        return f"fan-out lookup: every call failed ({dict(lookup.measured)})"
    ratio = lookup.p50_ms() / slowest
    return (
        f"fan-out lookup, six providers delayed {delay:.0f} ms: p50 {lookup.p50_ms():.1f} ms, "
        f"p99 {lookup.p99_ms():.1f} ms; one delayed provider alone p50 {slowest:.1f} ms; "
        f"ratio {ratio:.2f}  {_check(ratio <= 1.2, '<= 1.2')}"
    )


def _check(passed: bool, target: str) -> str:
    return f"[{'ok' if passed else 'MISSED'}: {target}]"


def machine() -> str:
    """Cores, CPU model, Python and grpcio versions, and the load when the run ended."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    load = Path("/proc/loadavg").read_text().split()[:3]
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, grpcio {grpc.__version__}; "
        f"load average {' '.join(load)}"
    )
