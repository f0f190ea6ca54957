"""``ExecProvider``: the kubeconfig ``exec`` credential plugin a ``Config`` names."""

from __future__ import annotations

from collections.abc import Mapping

from attrs import field, frozen


def _env_tuple(
    value: Mapping[str, str] | tuple[tuple[str, str], ...],
) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        return tuple(value.items())
    return tuple(value)


@frozen(kw_only=True)
class ExecProvider:
    """A kubeconfig ``exec`` credential plugin (client.authentication.k8s.io).

    Attributes:
        command: the program to run; a bare name is looked up on ``PATH``,
            a relative path was resolved against the kubeconfig's folder.
        args: its arguments.
        env: extra environment variables, added to the process's own. Values
            may hold secrets, so they are never shown.
        api_version: ``client.authentication.k8s.io/v1`` or ``.../v1beta1``.
        install_hint: shown when the command is missing.
        provide_cluster_info: pass the cluster in ``KUBERNETES_EXEC_INFO``.
        interactive_mode: ``Never``, ``IfAvailable`` or ``Always``; asyncpod
            never has a terminal to offer, so ``Always`` cannot be honoured.
        user: the kubeconfig user that names the plugin, for error messages.
    """

    command: str
    args: tuple[str, ...] = field(default=(), converter=tuple)
    env: tuple[tuple[str, str], ...] = field(default=(), converter=_env_tuple, repr=False)
    api_version: str = "client.authentication.k8s.io/v1"
    install_hint: str | None = None
    provide_cluster_info: bool = False
    interactive_mode: str = "IfAvailable"
    user: str | None = None


__all__ = ["ExecProvider"]
