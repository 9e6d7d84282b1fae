import socket

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails (loaders must work offline)."""
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
