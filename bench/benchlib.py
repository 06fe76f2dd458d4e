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
