"""Setup the provider tests share: the provider's API played by a FakeHTTPServer on
127.0.0.1, apps configured to call it, the CLI as the merchant runs it, and production
configurations.

A provider test module makes its fixtures from its settings::

    def settings(api):
        return {"EMAIL_PROVIDER": "sendgrid", "SENDGRID_API_HOST": api.url, ...}

    api, make_app, provider_app, run = provider_fixtures(settings)
"""

import json

import pytest

from app.providers import ProviderError
from config import ProductionConfig
from tests.fake_http import FakeHTTPServer


def provider_fixtures(settings):
    """The fixtures ``api``, ``make_app``, ``provider_app`` and ``run`` for one provider.

    ``settings(api)`` is the configuration that sends through the fake ``api``;
    ``make_app(**overrides)`` builds an app with it (and the overrides), ``provider_app`` is
    one such app with its context pushed, ``run(*args, ok=True)`` runs a flask command on it
    with ``--json`` and returns (exit code, parsed output), asserting success unless ok=False.
    """

    @pytest.fixture
    def api():
        with FakeHTTPServer() as server:
            yield server

    @pytest.fixture
    def make_app(app_factory, api):
        def build(**overrides):
            return app_factory(**{**settings(api), **overrides})

        return build

    @pytest.fixture
    def provider_app(make_app):
        app = make_app()
        with app.app_context():
            yield app

    @pytest.fixture
    def run(provider_app):
        runner = provider_app.test_cli_runner()

        def invoke(*args, ok=True):
            result = runner.invoke(args=[*args, "--json"])
            if ok:
                assert result.exit_code == 0, result.output
            return result.exit_code, json.loads(result.stdout)

        return invoke

    return api, make_app, provider_app, run


def provider_error(send):
    """The ProviderError ``send()`` raises (the test fails if it raises none)."""
    with pytest.raises(ProviderError) as caught:
        send()
    return caught.value


def production_config(tmp_path, **settings):
    """A ProductionConfig subclass with the secrets production insists on, plus ``settings``."""
    return type(
        "Prod",
        (ProductionConfig,),
        {
            "SECRET_KEY": "x" * 40,
            "ORDER_WEBHOOK_SECRET": "s" * 32,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}",
            **settings,
        },
    )


def register_rendezvous_provider(name, parties, timeout=60):
    """Register provider ``name``: the outbox provider, except that no send of an app
    (one app = one process's dispatcher, with its pool of senders) gets through until
    ``parties`` apps each have a send in flight — that many ticks are mid-flight at once,
    holding claims, whatever the thread scheduling."""
    import threading

    from app.outbox.provider import OutboxProvider
    from app.providers.base import register

    rendezvous = threading.Barrier(parties, timeout=timeout)
    lock = threading.Lock()
    through = {}  # app → Event: that app's first send met the others (its e-mail and SMS
    # providers are two instances: the app, not the instance, is the party)

    @register(name)
    class RendezvousProvider(OutboxProvider):
        def send(self, message):
            with lock:
                first = self.app not in through
                gate = through.setdefault(self.app, threading.Event())
            if first:
                rendezvous.wait()
                gate.set()
            elif not gate.wait(timeout):
                raise threading.BrokenBarrierError
            return super().send(message)
