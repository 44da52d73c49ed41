"""The key that signs sessions, CSRF tokens and remember cookies.

There is no built-in key: a key anyone can read in this repository would let anyone sign
an admin session. Production must be given ``SECRET_KEY`` (``production_key_problem``
says what it refuses); anywhere else an unset ``SECRET_KEY`` means a random key made on
the first start and kept in ``instance/secret-key`` (mode 0600), so sessions survive a
restart and every process of this installation shares it.
"""

import logging
import os
import secrets

log = logging.getLogger("app")

MIN_LENGTH = 32
# Values people paste from tutorials and examples (compared case-insensitively, trimmed).
PLACEHOLDERS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "change-this",
        "changethis",
        "secret",
        "secret-key",
        "secret_key",
        "secretkey",
        "your-secret-key",
        "your_secret_key",
        "mysecret",
        "my-secret-key",
        "dev",
        "development",
        "dev-only-insecure-secret-key",
        "test",
        "test-secret",
        "password",
        "default",
        "insecure",
        "xxx",
        "please-change-me",
        "replace-me",
        "supersecret",
        "super-secret-key",
        "flask-secret-key",
    }
)


def is_placeholder(key):
    text = key.strip().lower()
    return text in PLACEHOLDERS or text.startswith(("changeme", "change-me", "replace-me", "your-secret"))


def production_key_problem(key):
    """Why production refuses this SECRET_KEY, or None."""
    if not key or not key.strip():
        return "SECRET_KEY must be set (a long random value, e.g. python -c 'import secrets; print(secrets.token_hex(32))')"
    if is_placeholder(key):
        return "SECRET_KEY is a well-known placeholder value; set a long random one"
    if len(key.strip()) < MIN_LENGTH:
        return f"SECRET_KEY must be at least {MIN_LENGTH} characters (got {len(key.strip())})"
    return None


def default_key_file(app):
    return app.config.get("SECRET_KEY_FILE") or os.path.join(app.instance_path, "secret-key")


def ensure_secret_key(app):
    """Outside production, an unset SECRET_KEY becomes the installation's generated key."""
    if app.config.get("SECRET_KEY"):
        if (
            not app.config.get("PRODUCTION")
            and not app.testing
            and (is_placeholder(app.config["SECRET_KEY"]) or len(app.config["SECRET_KEY"]) < MIN_LENGTH)
        ):
            log.warning(
                "SECRET_KEY is short or a well-known placeholder: anyone who guesses it can sign an admin "
                "session. Unset it (a random key is then kept in the instance folder) or set a long random "
                "value; production refuses to start with it"
            )
        return
    if app.config.get("PRODUCTION"):
        return  # check_production_config refuses to start and says why
    app.config["SECRET_KEY"] = load_or_create(default_key_file(app))


def load_or_create(path):
    """The key kept at ``path``, made on the first call. Safe when several processes
    start at once: the first file linked into place wins and the others read it."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    try:
        os.link(temporary, path)  # fails if another process got there first
    except FileExistsError:
        pass
    else:
        log.warning(
            "SECRET_KEY is not set: generated a random one and kept it in %s (mode 0600). Sessions stay "
            "valid across restarts; every process of this installation must read the same file, or set "
            "SECRET_KEY (production requires it)",
            path,
        )
    finally:
        os.unlink(temporary)
    return _read(path)


def _read(path):
    with open(path) as f:
        key = f.read().strip()
    if len(key) < MIN_LENGTH:
        raise RuntimeError(
            f"refusing to start: {path} holds no usable key (fewer than {MIN_LENGTH} characters); "
            "delete it to have a new one made, or set SECRET_KEY"
        )
    return key
