"""Testing helpers: an embedded Kubernetes API server (the sandbox) and a pytest plugin.

The sandbox is an in-memory API server in a background thread, so asyncio and
trio code (and kubectl) can all talk to it::

    from asyncpod.testing import Sandbox

    with Sandbox() as sb:
        sb.server_url   # https://127.0.0.1:PORT (its own CA in sb.ca_file; tokens)
        sb.proxy_url    # http://127.0.0.1:PORT  (no auth, as kubectl proxy)
        sb.unix_socket  # the same on a Unix socket
        sb.kubeconfig   # admin kubeconfig for kubectl and Config.from_kubeconfig

        pod = sb.pod_environment(namespace="team", service_account="robot")
        pod.root, pod.environ, pod.token
        pod.rotate_token(grace=0.5)       # the kubelet's ..data swap

        sb.faults.add("throttle", count=2, path="/configmaps$", retry_after=1)
        sb.faults.add("error", status=503, method="POST")
        sb.faults.add("drop_after", method="POST")   # stored, but never answered
        sb.faults.add("watch_drop", after=3)         # a watch breaks after 3 events
        sb.rules.deny(verbs="delete", users="system:serviceaccount:*")
        sb.requests.count("POST", "/api/v1/namespaces/default/configmaps")
        sb.compact()                      # older resourceVersions now get 410

The pytest plugin (entry point ``asyncpod``) gives the fixtures ``sandbox``
(one server per session, reset to a fresh cluster for every test) and
``pod_environment``.

It serves every stored built-in kind of v1.36 and runs pods on a fake node
as kwok does (``Sandbox(kubelet=False)``: no node, pods stay Pending);
``sb.exit_container(pod, code)`` ends a container.

Not imitated: most controllers (a Deployment makes no pods), OpenAPI
validation of built-in kinds beyond hand-written checks of the common ones
(custom resources follow their structural schema, without CEL rules),
HTTP/2, protobuf or YAML answers (JSON always; protobuf request bodies are
read for common kinds), aggregated discovery (the plain documents are
served, as for an old server), exec/attach/port-forward, RBAC unless
``Sandbox(rbac=True)`` (an ordered rule table decides), and the ``Server``
header that aiohttp adds. See docs/sandbox.md.
"""

from asyncpod.testing._auth import AccessRules, Rule, User
from asyncpod.testing._faults import Fault, Faults, RequestLog, RequestRecord
from asyncpod.testing._podenv import PodEnvironment
from asyncpod.testing._sandbox import Sandbox, SandboxError

__all__ = [
    "AccessRules",
    "Fault",
    "Faults",
    "PodEnvironment",
    "RequestLog",
    "RequestRecord",
    "Rule",
    "Sandbox",
    "SandboxError",
    "User",
]
