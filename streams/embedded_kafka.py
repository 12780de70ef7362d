"""Apache Kafka (KRaft, one node) as an embedded broker: the broker users run, for tests and for
`tasksage up --broker kafka`.

The jars come from Maven Central through deploy/kafka/pom.xml (`make kafka`): the version is
pinned there and Maven checks every jar's checksum. They are copied into DATA_DIR/kafka-VERSION/
with a stamp naming the pom's hash, so a changed pom fetches again. Unlike Tansu the broker keeps
its log on disk (DATA_DIR/.../log), so a restart on the same directory keeps every record.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from processors.errors import ConfigurationError
from streams.embedded import free_port, port_open

log = logging.getLogger(__name__)

POM = Path(__file__).resolve().parent.parent / "deploy" / "kafka" / "pom.xml"
INSTALL_HINT = (
    "install a Java 17+ runtime and Maven (Debian: apt-get install openjdk-17-jre-headless maven), "
    "then run `make kafka`"
)
# The broker's logging: warnings, plus the line saying it started.
_LOG4J = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""


def kafka_version(pom: Path = POM) -> str:
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not found:  # pragma: no cover - the pom is ours
        raise ConfigurationError(f"{pom} names no kafka.version")
    return found.group(1)


def jars_dir(data_dir: Path, pom: Path = POM) -> Path:
    return data_dir / f"kafka-{kafka_version(pom)}" / "libs"


def _pom_hash(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def jars_ready(data_dir: Path, pom: Path = POM) -> bool:
    stamp = jars_dir(data_dir, pom) / ".pom-sha256"
    return stamp.exists() and stamp.read_text().strip() == _pom_hash(pom)


def java_missing() -> str | None:
    """What is missing to run the broker (None: nothing)."""
    if shutil.which("java") is None:
        return "no `java` on PATH"
    return None


def fetch_jars(data_dir: Path, pom: Path = POM) -> Path:
    """Copy the broker's jars from Maven (checksums verified) unless the stamp says they are there."""
    target = jars_dir(data_dir, pom)
    if jars_ready(data_dir, pom):
        return target
    if shutil.which("mvn") is None:
        raise ConfigurationError("Maven (`mvn`) is needed to fetch the Apache Kafka jars", hint=INSTALL_HINT)
    if target.exists():
        shutil.rmtree(target)
    started = time.monotonic()
    subprocess.run(
        [
            "mvn", "-q", "-B", "-C", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={target.resolve()}", "-DincludeScope=runtime",
        ],
        check=True,
    )  # fmt: skip
    (target / ".pom-sha256").write_text(_pom_hash(pom) + "\n")
    log.info("fetched the Apache Kafka %s jars in %.1fs", kafka_version(pom), time.monotonic() - started)
    return target


class EmbeddedKafka:
    """One Apache Kafka process in KRaft mode, controller and broker in one, logs on disk.

    `start` formats the log directory the first time (a fresh cluster id) and reuses it after,
    so stop + start is a broker restart that keeps every topic, record and committed offset."""

    def __init__(
        self,
        port: int,
        data_dir: Path,
        *,
        jars: Path,
        heap: str = "512m",
        overrides: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.controller_port = free_port()
        self.data_dir = data_dir
        self.jars = jars
        self.heap = heap
        self.overrides = overrides or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in_s: float | None = None
        self._log_mark = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    def properties(self) -> dict[str, str]:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir.resolve()),
            # One node: every internal topic has one replica.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "num.partitions": "4",
            "auto.create.topics.enable": "true",
            # A group that starts alone need not wait 3 s for others.
            "group.initial.rebalance.delay.ms": "0",
            # Tests run workers with 2 s sessions to see failover quickly.
            "group.min.session.timeout.ms": "1000",
            # Retention is checked every few seconds, so a test can watch records go.
            "log.retention.check.interval.ms": "2000",
            "log.segment.delete.delay.ms": "0",
        }
        props.update(self.overrides)
        return props

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        config = self.data_dir / "log4j2.yaml"
        return [
            "java", f"-Xmx{heap}", "-Xss1m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={config.resolve()}", "-cp", f"{self.jars.resolve()}/*", main, *args,
        ]  # fmt: skip

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.yaml").write_text(_LOG4J)
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        return path

    def _format(self, config: Path) -> None:
        if (self.log_dir / "meta.properties").exists():
            return  # formatted before: keep the cluster and its logs
        kraft_id = cluster_id()
        out = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", kraft_id, "-c", str(config)),
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise ConfigurationError(f"formatting the Kafka log directory failed: {out.stdout}{out.stderr}")

    def start(self, timeout_s: float = 120.0) -> None:
        problem = java_missing()
        if problem:
            raise ConfigurationError(f"Apache Kafka cannot start: {problem}", hint=INSTALL_HINT)
        if not any(self.jars.glob("kafka_2.13-*.jar")):
            raise ConfigurationError(f"no Apache Kafka jars in {self.jars}", hint="run `make kafka`")
        if port_open("127.0.0.1", self.port):
            raise ConfigurationError(
                f"port {self.port} is already in use, so the embedded broker cannot start",
                hint="stop the other process, set TASKSAGE_EMBEDDED_KAFKA_PORT, or set KAFKA_BOOTSTRAP_SERVERS",
            )
        started = time.monotonic()
        config = self._write_config()
        self._format(config)
        out = (self.data_dir / "broker.log").open("ab")
        self._log_mark = out.tell()
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(config), heap=self.heap), stdout=out, stderr=subprocess.STDOUT
        )
        out.close()
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self.process.poll() is not None:
                raise ConfigurationError(
                    f"Apache Kafka exited with code {self.process.returncode}; see {self.data_dir / 'broker.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError(f"Apache Kafka did not start within {timeout_s}s")
            time.sleep(0.1)
        self.started_in_s = time.monotonic() - started
        log.info("Apache Kafka up on %s in %.1fs", self.bootstrap, self.started_in_s)

    def _ready(self) -> bool:
        """The listener is open and the broker said it started (the port opens a little earlier)."""
        if not port_open("127.0.0.1", self.port):
            return False
        with (self.data_dir / "broker.log").open("rb") as f:
            f.seek(self._log_mark)
            return b"Kafka Server started" in f.read()

    def stop(self, kill: bool = False) -> None:
        """Stop the broker: SIGTERM (a clean shutdown that flushes the log) or, with kill, SIGKILL."""
        if self.process and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


def cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, never starting with
    '-' (Kafka's own Uuid.randomUuid draws again in that case: `kafka-storage format -t -abc...`
    reads the id as an option and fails, one start in 64)."""
    while True:
        drawn = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not drawn.startswith("-"):
            return drawn
