"""The phases of `make bench` and the table they print.

One run measures, on this machine and under the same load generator:

1. the same call (a sandbox quotient familial) made directly to the cnaf service,
   through the bare pass-through proxy and through the full gateway (its gRPC
   port and its REST front, with one worker and with two), at high load
   (throughput, p50, p99, CPU per call of the serving processes) and at
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
import secrets
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import grpc
import httpx
import redis

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import identity_pb2, options_pb2
from apiparticulier.gateway.v1 import gateway_pb2
from bench.loadgen import OK, LoadSpec, run_load
from bench.mesh import client_commands_from_slowlog, command_counts, command_deltas, redis_round_trips
from bench.report import GATEWAY_REST, GATEWAY_REST_WORKERS, GATEWAY_WORKERS, NO_JOURNAL, PathRun, Report
from contract.routes import contract_scopes
from devstack.processes import Child, Issuer, ProcessGroup
from devstack.redis import free_port
from gateway.bounds import RATE_LIMIT_MAX_PER_SECOND
from gateway.journal.signing import generate as generate_journal_key

_ROOT = Path(__file__).resolve().parent.parent
QUOTIENT_FAMILIAL = "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"
QUOTIENT_FAMILIAL_REST = "/v3/dss/quotient_familial/identite"
"""The REST front's path in the tables: the gateway's gRPC call, over HTTP."""
LOOKUP = "/apiparticulier.gateway.v1.GatewayService/Lookup"
SIRET = "13002526500013"
"""The recipient of every call: a SIRET the gateway's check accepts."""
_BENCH_CLIENT = "bench"
_PROVIDER_SERVICES = ("c2s", "france_travail", "mesr", "cnous", "men")
"""The path of the gateway whose journal is its log event alone."""
_SLOWLOG_ENTRIES = 1_000_000

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Options:
    """How hard and how long each phase runs."""

    processes: int = 2
    concurrency: int = 32
    connections: int = 8
    """gRPC connections per client process at high load: the kernel spreads them over the workers."""
    workers: int = 2
    """Workers of the second gateway, measured beside the gateway of one."""
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
class _Path:
    """One way to make the benchmark's call: the process that serves it, where, with what."""

    child: Child
    """The serving process, whose CPU is read."""
    metadata: Metadata
    """gRPC metadata, or HTTP headers."""
    target: str = ""
    """Where to call, when not the child's gRPC address (the REST front's port)."""
    http_path: str = ""
    """The REST route and query, for an HTTP path; empty for gRPC."""


def measure(child: Child, spec: LoadSpec) -> PathRun:
    """Run ``spec`` and read the CPU ``child`` spent meanwhile."""
    before = child.cpu_seconds()
    load = run_load(spec)
    return PathRun(load, child.cpu_seconds() - before)


def smoke(address: str, method: str, request: bytes, metadata: Sequence[tuple[str, str]]) -> grpc.StatusCode:
    """The status of one call, made before any load so that a broken setup fails loudly."""
    with grpc.insecure_channel(address) as channel:
        try:
            call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                method, request_serializer=None, response_deserializer=None
            )
            call(request, timeout=10, metadata=tuple(metadata))
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def rest_smoke(target: str, http_path: str, headers: Metadata) -> grpc.StatusCode:
    """OK when one GET of the REST front answers 200, before any load; else UNKNOWN."""
    response = httpx.get(f"http://{target}{http_path}", headers=dict(headers), timeout=10)
    return grpc.StatusCode.OK if response.status_code == 200 else grpc.StatusCode.UNKNOWN


def quotient_familial_query() -> str:
    """The benchmark's call as the REST front takes it: `lefebvre`'s quotient familial, this month."""
    pivot = lefebvre()
    query = {
        "recipient": SIRET,
        "nomNaissance": pivot.nom_naissance,
        "prenoms[]": list(pivot.prenoms),
        "anneeDateNaissance": pivot.annee_date_naissance,
        "moisDateNaissance": pivot.mois_date_naissance,
        "jourDateNaissance": pivot.jour_date_naissance,
        "sexeEtatCivil": pivot.sexe_etat_civil,
        "codeCogInseePaysNaissance": pivot.code_cog_insee_pays_naissance,
    }
    return f"{QUOTIENT_FAMILIAL_REST}?{urlencode(query, doseq=True)}"


# -- the run --------------------------------------------------------------------------------------


def run(options: Options, say: Callable[[str], None]) -> Report:
    """Start everything, run every phase, stop everything (also on error or Ctrl-C)."""
    report = Report(options)
    mesh = ProcessGroup(options.log_dir)
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as keys_dir:
        try:
            Run(mesh, report, Path(keys_dir), say).all()
        finally:
            say("stopping every process")
            mesh.close()
    return report


class Run:
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
        self.paths: dict[str, _Path] = {}
        self.gateway_env: dict[str, str] = {}
        self.gateway: Child | None = None
        self.metrics = ""
        """The gateway's metrics port, where its Redis round trips are timed."""
        self.cnaf: Child | None = None
        self.redis: redis.Redis | None = None

    def all(self) -> None:
        """Every phase, in order."""
        self.start()
        self.high_load()
        self.low_load()
        gateway, issuer = self.started_gateway()
        for child in (gateway, self.paths[GATEWAY_WORKERS].child, self.paths[NO_JOURNAL].child):
            self.mesh.stop(child)  # their CPU is the next phases' to use
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
        self.paths["direct"] = _Path(cnaf, self.recipient)
        passthrough = self._passthrough("passthrough", cnaf.address)
        self.paths["pass-through"] = _Path(passthrough, self.recipient)
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
        rest = f"127.0.0.1:{free_port()}"
        self.metrics = f"127.0.0.1:{free_port()}"
        self.gateway = self.mesh.start(
            "gateway",
            ["-m", "gateway"],
            {
                **self.gateway_env,
                "RATE_LIMIT_BURST": "10000",
                "REST_PORT": rest.rpartition(":")[2],
                "METRICS_PORT": self.metrics.rpartition(":")[2],
            },
        )
        rest_of_workers = f"127.0.0.1:{free_port()}"
        workers = self.mesh.start(
            "gateway-workers",
            ["-m", "gateway"],
            {
                **self.gateway_env,
                "RATE_LIMIT_BURST": "10000",
                "REST_PORT": rest_of_workers.rpartition(":")[2],
                "GATEWAY_WORKERS": str(self.options.workers),
            },
        )
        token = issuer.issue(cnaf_scopes(), SIRET, rate_limit=RATE_LIMIT_MAX_PER_SECOND)
        authorization = (("authorization", f"Bearer {token}"),)
        self.paths["gateway"] = _Path(self.gateway, (*authorization, *self.recipient))
        # The same call through the gateway's REST front, in the same process.
        self.paths[GATEWAY_REST] = _Path(self.gateway, authorization, rest, quotient_familial_query())
        # The same gateway with its journal kept to the log event: measured in the same rounds,
        # the difference is what the journal in PostgreSQL costs.
        without_journal = {**self.gateway_env, "JOURNAL_DATABASE_URL": "", "RATE_LIMIT_BURST": "10000"}
        self.paths[NO_JOURNAL] = _Path(
            self.mesh.start("gateway-no-journal", ["-m", "gateway"], without_journal),
            (*authorization, *self.recipient),
        )
        # Both again through a gateway of several workers on the same ports.
        self.paths[GATEWAY_WORKERS] = _Path(workers, (*authorization, *self.recipient))
        self.paths[GATEWAY_REST_WORKERS] = _Path(
            workers, authorization, rest_of_workers, quotient_familial_query()
        )
        for name, path in self.paths.items():
            if path.http_path:
                status = rest_smoke(path.target, path.http_path, path.metadata)
            else:
                status = smoke(path.child.address, QUOTIENT_FAMILIAL, self.request, path.metadata)
            if status is not grpc.StatusCode.OK:
                raise RuntimeError(f"the {name} path answers {status.name} to the benchmark's call")

    def spec(self, path: _Path, *, low_load: bool = False) -> LoadSpec:
        """The quotient familial call along ``path``: high load, or one call at a time."""
        options = self.options
        return LoadSpec(
            targets=(path.target or path.child.address,),
            method=QUOTIENT_FAMILIAL,
            http_path=path.http_path,
            request=self.request,
            metadata=path.metadata,
            processes=1 if low_load else options.processes,
            concurrency=1 if low_load else options.concurrency,
            connections=1 if low_load else options.connections,
            duration=options.low_load_duration if low_load else options.duration,
            warmup=0.5 if low_load else options.warmup,
        )

    def high_load(self) -> None:
        """Each path in turn, round after round; each keeps its best round."""
        assert self.redis is not None  # noqa: S101 - set by start
        report = self.report
        for round_number in range(1, self.options.rounds + 1):
            for name, path in self.paths.items():
                self.say(f"high load, round {round_number}/{self.options.rounds}: {name}")
                before = command_counts(self.redis)
                result = measure(path.child, self.spec(path))
                deltas = command_deltas(before, command_counts(self.redis))
                best = report.high.get(name)
                if best is None or result.load.throughput > best.load.throughput:
                    report.high[name] = result
                    if name == "gateway":
                        report.redis_commands, report.redis_calls = deltas, result.load.statuses[OK]

    def low_load(self) -> None:
        """Each path of one process at concurrency 1; Redis's SLOWLOG records the gateway's round trips."""
        assert self.redis is not None  # noqa: S101 - set by start
        for name, path in self.paths.items():
            if name in (GATEWAY_WORKERS, GATEWAY_REST_WORKERS):
                continue  # one call at a time keeps one worker busy: nothing to tell
            self.say(f"low load (concurrency 1): {name}")
            spec = self.spec(path, low_load=True)
            child = path.child
            if name != "gateway":
                self.report.low[name] = measure(child, spec)
                continue
            # With a zero threshold SLOWLOG logs every command with its client's address,
            # which INFO commandstats cannot: the commands a script runs show as "?:0".
            self.redis.config_set("slowlog-log-slower-than", 0)
            self.redis.config_set("slowlog-max-len", _SLOWLOG_ENTRIES)
            self.redis.slowlog_reset()
            try:
                spent, made = redis_round_trips(self.metrics)
                self.report.low[name] = measure(child, spec)
                entries = self.redis.slowlog_get(_SLOWLOG_ENTRIES)
                now_spent, now_made = redis_round_trips(self.metrics)
                self.report.redis_round_trip_ms = (now_spent - spent) / max(1, now_made - made) * 1000
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
        # The default rate set to the token's: a bucket scales with its rate
        # (`RateLimiter.burst_for`), so the token's burst is then the one asked for.
        env = {
            **self.gateway_env,
            "RATE_LIMIT_PER_SECOND": str(options.rate_limit),
            "RATE_LIMIT_BURST": str(options.burst),
            "GATEWAY_REPLICAS": "3",
        }
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
        token = issuer.issue(contract_scopes(), SIRET, rate_limit=RATE_LIMIT_MAX_PER_SECOND)
        one_provider = self.spec(_Path(delayed, self.recipient), low_load=True)
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
