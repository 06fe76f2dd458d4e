"""Shared pieces of the benchmark drivers (bench/run, bench/catalog): free
loopback ports, wrk runs with their latency percentiles, RSS, the machine
description. Only loopback addresses; every run is bounded in time."""
import json
import os
import platform
import re
import socket
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGORA = os.environ.get("AGORA_BIN", os.path.join(ROOT, "build", "release", "agora"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def parse_latency(text):
    """wrk's --latency percentiles, in milliseconds."""
    out = {}
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        out[f"p{pct}_ms"] = round(float(value) * scale, 3)
    return out


def wrk(url, duration, connections=64, threads=1, headers=(), script=None):
    """One wrk run: requests/s, non-2xx count, socket errors, p50..p99 in ms."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    text = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=duration + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    result = {"rps": float(m.group(1)) if m else 0.0, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
              "socket_errors": errors.group(0) if errors else ""}
    result.update(parse_latency(text))
    return result


def http_json(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def machine():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "load_before": os.getloadavg()[0]}


# --- PostgreSQL (bench/checkout, bench/raw-txn/run) ----------------------------

def psql(url, sql, timeout=120):
    """Runs SQL with psql (ON_ERROR_STOP); returns its unaligned, tuples-only output."""
    proc = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url],
                          input=sql, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def start_postgres():
    """A throwaway cluster from scripts/lib/pg.sh (loopback only, durability
    off as for the tests); returns (base URL, cluster folder)."""
    script = ('source "$1/scripts/lib/pg.sh" && agora_pg_start >&2 && '
              'echo "$AGORA_TEST_DATABASE_URL" && echo "$AGORA_PG_DIR"')
    proc = subprocess.run(["bash", "-c", script, "pg", ROOT], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"agora_pg_start failed: {proc.stderr.strip()}")
    url, folder = proc.stdout.split()[:2]
    return url, folder


def stop_postgres(folder):
    script = 'source "$1/scripts/lib/pg.sh" && AGORA_PG_DIR="$2" && agora_pg_stop'
    subprocess.run(["bash", "-c", script, "pg", ROOT, folder], capture_output=True, text=True, timeout=120)


def create_pg_database(base, prefix="agora_bench_"):
    """A fresh database on the server of `base`; returns (name, URL)."""
    import secrets
    import urllib.parse
    name = prefix + secrets.token_hex(5)
    psql(base, f"CREATE DATABASE {name}")
    parts = urllib.parse.urlsplit(base)
    return name, urllib.parse.urlunsplit(parts._replace(path="/" + name))


def drop_pg_database(base, name):
    psql(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_settings(url):
    """The settings that decide what a commit costs."""
    out = psql(url, "SELECT name || '=' || setting FROM pg_settings WHERE name IN "
                    "('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'server_version') "
                    "ORDER BY name")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


# --- CPU accounting --------------------------------------------------------------

def cpu_ticks(pid):
    """utime + stime of a process (and its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def ticks_of(name):
    """utime + stime of every live process called `name` (e.g. "postgres")."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != name:
                    continue
            total += cpu_ticks(pid)
        except OSError:
            pass
    return total


def machine_ticks():
    """(busy, steal, total) clock ticks of all CPUs since boot; iowait counts
    as idle, steal (the hypervisor running someone else) as neither."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return user + nice + system + irq + softirq, steal, sum(v)


TICK = os.sysconf("SC_CLK_TCK")
