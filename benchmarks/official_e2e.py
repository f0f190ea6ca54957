"""The official Python client's exec and port-forward e2e tests, against ``asyncpod sandbox``.

    python -m benchmarks.official_e2e --source PATH/TO/kubernetes-client-python

The ``kubernetes`` wheel does not ship its e2e tests, so ``--source`` names a
checkout of github.com/kubernetes-client/python; its ``kubernetes/e2e_test/``
is laid over the client that ``pip install kubernetes pytest`` put in an
environment of its own (``<root>/official``, next to the benchmark
environments). Nothing of that checkout is copied into this repository.

The tests are those of ``e2e_test/test_client.py`` that exec or port-forward:
``test_pod_apis``, ``test_pod_exec_close_channel``, ``test_exit_code``,
``test_portforward_raw`` and ``test_portforward_http``. The e2e configuration
(``base.get_e2e_configuration()``) loads ``$KUBECONFIG``, which points at
``asyncpod sandbox --kubeconfig``; ``HOME`` is a temporary folder, so no
``~/.kube/config`` of this machine is read.

The sandbox runs no containers, so what stands for them:

- exec runs the command as a local process (``/bin/sh -c``, ``gzip``,
  ``uptime``, ``cat``...): they run for real, as the test's user.
- ``test_portforward_raw``'s pod runs ``port-server.py 1234 1235``, echo
  servers: this script serves two echo listeners on free local ports and maps
  the pods' ports 1234 and 1235 to them with ``--map-port
  'portforward-raw-*:1234=PORT'``; 1236 stays unmapped, refused as the test
  expects.
- ``test_portforward_http``'s pod is ``nginx``: when ``nginx`` is installed
  here, it is started on a free port with its default page and mapped to the
  pods' port 80; without it that test fails with "connection refused".
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks._envs import default_root, official_env
from benchmarks._served import echo_listener, sandbox_process

TESTS = (
    "test_pod_apis",
    "test_pod_exec_close_channel",
    "test_exit_code",
    "test_portforward_raw",
    "test_portforward_http",
)
E2E_FILES = ("__init__.py", "base.py", "port_server.py", "test_client.py")
NGINX_PAGES = (Path("/usr/share/nginx/html"), Path("/var/www/html"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def nginx(folder: Path) -> Iterator[int | None]:
    """A local nginx serving its default page on a free port; ``None`` without nginx."""
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )
    pages = next((p for p in NGINX_PAGES if (p / "index.html").exists()), None)
    if binary is None or pages is None:
        yield None
        return
    port = _free_port()
    folder.mkdir()
    temp = " ".join(
        f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    (folder / "nginx.conf").write_text(
        f"daemon off; pid {folder / 'nginx.pid'}; error_log {folder / 'error.log'};\n"
        "events {}\n"
        f"http {{ access_log off; {temp} uwsgi_temp_path {folder / 'uwsgi'}; "
        f"scgi_temp_path {folder / 'scgi'};\n"
        f"  server {{ listen 127.0.0.1:{port}; root {pages}; index index.html; }} }}\n"
    )
    process = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not _wait_listening(port, process):
            yield None
            return
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> bool:
    end = time.monotonic() + 10
    while time.monotonic() < end and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def install_tests(python: str, source: Path) -> Path:
    """Lay the checkout's ``kubernetes/e2e_test/`` over the installed client; returns its folder."""
    package = subprocess.run(
        [python, "-c", "import kubernetes, os; print(os.path.dirname(kubernetes.__file__))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    target = Path(package) / "e2e_test"
    target.mkdir(exist_ok=True)
    for name in E2E_FILES:
        origin = source / "kubernetes" / "e2e_test" / name
        if not origin.exists():
            msg = f"--source {source}: no kubernetes/e2e_test/{name}; is it a client checkout?"
            raise SystemExit(msg)
        shutil.copyfile(origin, target / name)
    return target


def run_tests(python: str, tests: Path, kubeconfig: Path, home: Path, report: Path) -> int:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig),
    }
    command = [
        python,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-v",
        f"--junitxml={report}",
        str(tests / "test_client.py"),
        "-k",
        " or ".join(TESTS),
    ]
    return subprocess.run(command, env=env, cwd=home, check=False).returncode


def summary(report: Path) -> list[tuple[str, str, str]]:
    """(test, outcome, first line of the failure) for each test case of a JUnit report."""
    rows = []
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome, detail = "passed", ""
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcome = {"failure": "failed"}.get(kind, kind)
                detail = (
                    (found.get("message") or "").splitlines()[0][:120]
                    if found.get("message")
                    else ""
                )
                break
        rows.append((case.get("name", "?"), outcome, detail))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        required=True,
        help="a checkout of github.com/kubernetes-client/python (for kubernetes/e2e_test/)",
    )
    parser.add_argument("--root", type=Path, default=default_root(), help="where venvs are kept")
    args = parser.parse_args()
    env = official_env(args.root)
    tests = install_tests(env.python, args.source)
    version = subprocess.run(
        [env.python, "-c", "import kubernetes; print(kubernetes.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="official-e2e-")))
        port_1234 = stack.enter_context(echo_listener())
        port_1235 = stack.enter_context(echo_listener())
        port_80 = stack.enter_context(nginx(folder / "nginx"))
        mappings = [f"portforward-raw-*:1234={port_1234}", f"portforward-raw-*:1235={port_1235}"]
        if port_80 is not None:
            mappings.append(f"portforward-http-*:80={port_80}")
        else:
            print("# no nginx here: test_portforward_http will be refused", file=sys.stderr)
        kubeconfig = stack.enter_context(sandbox_process(folder, mappings))
        home = folder / "home"
        home.mkdir()
        report = folder / "report.xml"
        run_tests(env.python, tests, kubeconfig, home, report)
        rows = summary(report)
    print(f"\nkubernetes {version} e2e_test/test_client.py against asyncpod sandbox:")
    for name, outcome, detail in rows:
        print(f"  {outcome:<8} {name}" + (f"  ({detail})" if detail else ""))
    passed = sum(1 for _, outcome, _ in rows if outcome == "passed")
    print(f"{passed} passed, {len(rows) - passed} not passed, of {len(rows)}")
    sys.exit(0 if rows and passed == len(rows) else 1)


if __name__ == "__main__":
    main()
