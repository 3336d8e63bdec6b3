"""The pending answers kept in each web process's memory, dropped when a commit changes them.

`GET …/pending` is called on every page load of the host application. Asking PostgreSQL each
time costs more than the rest of the request (one `SELECT 1` alone takes a third of a no-op's
throughput on two cores), so each process keeps the catalog (versions that may be pending, API
keys) and each user's decisions in memory (`pending.Catalog`, `pending.UserState`).

Staying correct:
- Triggers announce every change that can alter an answer on the channel `notifier_pending`
  (migration 0007); a thread per process LISTENs and drops what changed: one user's state, or
  everything. PostgreSQL sends a notification only after its transaction is visible.
- Except the API's decisions, the one frequent write: NOTIFY would serialise their commits, so
  `decisions.decide` publishes them on Redis (`notifier:pending`) after commit, and a second
  thread per process subscribes. Without Redis it falls back to NOTIFY.
- A load that was in flight when its user (or everything) changed is not kept, so a read that
  began before a commit never lands in the cache after that commit's notification.
- Time: the catalog is rebuilt at the next effective date or end of a grace period.
- Unless both feeds are connected (starting, PostgreSQL or Redis restarting) nothing is kept or
  served from memory: every answer comes from the database, and a reconnect starts empty,
  since what was sent meanwhile was lost.
- A change committed by another process is seen here once its notification arrives (normally
  well under a millisecond; a process busy on both cores can take a few). `PENDING_CACHE_STRICT`
  waits for the notifications committed so far before each answer (a round trip; the tests use
  it so that they can read their own writes without sleeping).

On first use, and after each 'all', a thread loads users page by page (up to
`PENDING_CACHE_USERS`); others are loaded on their first request. Past that size the oldest
entry is dropped.
"""

from __future__ import annotations

import gc
import itertools
import logging
import secrets
import socket
import threading
import time
from datetime import UTC, datetime
from random import random

import psycopg
from flask import Flask, current_app
from prometheus_client import Counter
from psycopg.rows import dict_row
from redis import Redis
from redis.exceptions import RedisError

from . import db, fastpath, pending, queues
from .errors import NotFound, Unauthorized
from .pending import Catalog, UserState, load_catalog, load_user, load_users

log = logging.getLogger(__name__)

CHANNEL = "notifier_pending"  # PostgreSQL: every change but the API's own decisions
REDIS_CHANNEL = "notifier:pending"  # Redis: the API's decisions (decisions.decide)
LISTENER_NAME = "notifier-pending-listener"  # application_name, to find it in pg_stat_activity
WARM_PAGE = 20_000
# Notice a dead server within seconds, not after TCP's retransmissions (~15 minutes).
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 9000,  # also while a heartbeat waits unacknowledged (keepalives do not)
}
_REDIS_KEEPALIVES = {
    socket.TCP_KEEPIDLE: 5,
    socket.TCP_KEEPINTVL: 2,
    socket.TCP_KEEPCNT: 2,
    socket.TCP_USER_TIMEOUT: 9000,
}
_HEARTBEAT_SECONDS = 10.0
_ECHO_TIMEOUT_SECONDS = 5.0

# What operators watch (summed over the server's processes in multiprocess mode): a cache that
# answers from the database for long, or keeps resetting, is a cache that is not working.
ANSWERS = Counter(
    "notifier_pending_answers_total",
    "Pending answers, by where the user's state came from",
    ["source"],
)
FROM_MEMORY, FROM_DATABASE = ANSWERS.labels("memory"), ANSWERS.labels("database")
RESETS = Counter(
    "notifier_pending_cache_resets_total",
    "Times a process dropped its whole pending cache (publish, keys, reconnect)",
)


class PendingCache:
    def __init__(
        self, url: str, redis_url: str, *, max_users: int, max_age: float, strict: bool
    ) -> None:
        self.url = url
        self.redis_url = redis_url
        self.max_users = max_users
        # A user kept is read again after this long, whatever was announced: a bound on the
        # harm of an API decision's announcement that never came (a process killed between its
        # commit and its publish). The rest is announced by triggers, in the same transaction.
        self.max_age = max_age
        self.strict = strict
        self._lock = threading.Lock()
        # Served from memory only while both feeds are connected: PostgreSQL's notifications
        # and Redis's channel (the API's decisions).
        self._links = {"postgres": False, "redis": False}
        self._live = False
        self._generation = 0  # bumped whenever everything is dropped or a catalog installed
        self._catalog: Catalog | None = None
        # external id → UserState as a plain tuple: the collector stops tracking plain tuples of
        # numbers and strings (not NamedTuple instances), so full passes do not walk them.
        self._users: dict[str, tuple] = {}
        self._ids: dict[int, str] = {}  # user id → external id, to drop a user by id
        # Per load running now, the users changed meanwhile (keyed by load: equal sets differ).
        self._in_flight: dict[int, set[int]] = {}
        self._loads = itertools.count()
        self._syncs: dict[str, list] = {}  # token → [feeds still to answer, event]
        self._stop = threading.Event()
        self.stats = {"hits": 0, "loads": 0, "dropped": 0, "resets": 0}  # approximate
        self._warm_wanted: tuple[Catalog | None, int] | None = None
        self._warm_event = threading.Event()
        self.warm_idle = threading.Event()  # set while no warm-up runs or is asked for
        self.warm_idle.set()
        for target, name in (
            (self._listen, "listener"),
            (self._subscribe, "subscriber"),
            (self._warm_loop, "warm-up"),
        ):
            threading.Thread(target=target, name=f"notifier-pending-{name}", daemon=True).start()

    # -- the feeds ---------------------------------------------------------------------------

    def _listen(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.url, autocommit=True, application_name=LISTENER_NAME, **self._conninfo()
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._link("postgres", up=True)
                    delay = 0.2
                    beat = time.monotonic()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._handle(note.payload)
                        if time.monotonic() - beat > _HEARTBEAT_SECONDS:
                            conn.execute("SELECT 1")
                            beat = time.monotonic()
            except Exception as exc:  # whatever it was, the feed is down until it reconnects
                if not self._stop.is_set():
                    log.warning("pending cache: listener lost its connection: %s", exc)
            self._link("postgres", up=False)
            self._stop.wait(delay)
            delay = min(delay * 2, 5.0)

    def _subscribe(self) -> None:
        delay = 0.2
        tcp = not self.redis_url.startswith("unix:")
        options = {"socket_keepalive": True, "socket_keepalive_options": _REDIS_KEEPALIVES}
        while not self._stop.is_set():
            client = Redis.from_url(
                self.redis_url, socket_connect_timeout=2, **(options if tcp else {})
            )
            publisher = Redis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=5)
            try:
                with client.pubsub() as pubsub:
                    pubsub.subscribe(REDIS_CHANNEL)
                    # A subscription only receives: it would not notice a server that vanished
                    # without a word. Every few seconds it must hear its own echo.
                    echo, echo_sent, last_echo = None, 0.0, time.monotonic()
                    while not self._stop.is_set():
                        now = time.monotonic()
                        if echo is None and now - last_echo > _HEARTBEAT_SECONDS:
                            echo, echo_sent = f"ping {secrets.token_hex(8)}", now
                            publisher.publish(REDIS_CHANNEL, echo)
                        elif echo is not None and now - echo_sent > _ECHO_TIMEOUT_SECONDS:
                            raise ConnectionError("no echo from Redis in time")
                        message = pubsub.get_message(timeout=1.0)
                        if message is None:
                            continue
                        if message["type"] == "subscribe":  # confirmed: nothing missed from now
                            self._link("redis", up=True)
                            delay = 0.2
                        elif message["type"] == "message":
                            data = message["data"].decode()
                            if data == echo:
                                echo, last_echo = None, time.monotonic()
                            else:
                                self._handle(data)
            except Exception as exc:  # whatever it was, the feed is down until it resubscribes
                if not self._stop.is_set():
                    log.warning("pending cache: Redis subscription lost: %s", exc)
            finally:
                client.close()
                publisher.close()
            self._link("redis", up=False)
            self._stop.wait(delay)
            delay = min(delay * 2, 5.0)

    def _link(self, feed: str, *, up: bool) -> None:
        """A feed connected or lost: what came before may have been missed, drop everything."""
        with self._lock:
            self._links[feed] = up
        self._drop_all()

    def _conninfo(self) -> dict:
        host = psycopg.conninfo.conninfo_to_dict(self.url).get("host", "")
        return {} if str(host).startswith("/") else _KEEPALIVES  # none on a Unix socket

    def _handle(self, payload: str) -> None:
        kind, _, rest = payload.partition(" ")
        if kind == "u" and rest.replace(" ", "").isdigit():
            ids = [int(i) for i in rest.split()]
            with self._lock:
                for user_id in ids:
                    external_id = self._ids.pop(user_id, None)
                    if external_id is not None:
                        self._users.pop(external_id, None)
                        self.stats["dropped"] += 1
                for changed in self._in_flight.values():
                    changed.update(ids)
        elif kind == "ping":  # another process's echo
            pass
        elif kind == "sync":
            with self._lock:
                waiting = self._syncs.get(rest)
                if waiting is not None:
                    waiting[0] -= 1
                    if waiting[0] == 0:
                        del self._syncs[rest]
                        waiting[1].set()
        else:  # 'all', or anything this version does not know: drop everything
            self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            self._live = all(self._links.values())
            self._generation += 1
            generation, live = self._generation, self._live
            self._catalog = None
            self._users, self._ids = {}, {}
            self.stats["resets"] += 1
        RESETS.inc()
        if live:  # load again before the next request asks
            self._start_warm(None, generation)

    def close(self) -> None:
        self._stop.set()

    # -- reading -----------------------------------------------------------------------------

    def sync(self) -> bool:
        """Wait until every change committed before now has been handled (both feeds)."""
        token = secrets.token_hex(8)
        event = threading.Event()
        with self._lock:
            self._syncs[token] = [2, event]
        try:
            with fastpath.connection() as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"sync {token}"))
            queues.redis_connection().publish(REDIS_CHANNEL, f"sync {token}")
            return event.wait(5.0)
        except (psycopg.Error, RedisError):
            return False  # answered from the database instead
        finally:
            with self._lock:
                self._syncs.pop(token, None)

    def catalog(self, now: datetime) -> Catalog | None:
        """The catalog for `now`, loaded if needed; None when nothing may be served from memory."""
        if not self._live or (self.strict and not self.sync()):
            return None
        found = self._catalog
        # Loaded a moment after `now` is as good: the request could have come that moment later.
        if found is not None and now < found.valid_until:
            return found
        generation = self._generation
        with fastpath.connection() as conn:
            found = load_catalog(conn, now)
        if not self._install(found, generation):
            return found  # fresh, but something changed meanwhile: use it, do not keep it
        self._start_warm(found, generation + 1)
        return found

    def _install(self, catalog: Catalog, generation: int) -> bool:
        """Install a catalog loaded at `generation` (users start empty), unless it is stale."""
        with self._lock:
            if self._generation != generation or not self._live:
                return False
            self._generation += 1
            self._catalog = catalog
            self._users, self._ids = {}, {}
            return True

    def user(self, catalog: Catalog, external_id: str) -> UserState | None:
        kept = self._users.get(external_id)
        if kept is not None and catalog is self._catalog:
            found = UserState._make(kept)
            if time.monotonic() - found.loaded < self.max_age:
                self.stats["hits"] += 1
                FROM_MEMORY.inc()
                return found
        generation, load, changed = self._begin_load()
        try:
            with fastpath.connection() as conn:
                found = load_user(conn, catalog, external_id)
        finally:
            with self._lock:
                del self._in_flight[load]
                if (
                    found is not None
                    and found.id not in changed
                    and generation == self._generation
                    and catalog is self._catalog
                ):
                    self._keep(external_id, found)
        self.stats["loads"] += 1
        FROM_DATABASE.inc()
        return found

    def _begin_load(self) -> tuple[int, int, set[int]]:
        """(generation, load id, the set of users that will change while it runs)."""
        with self._lock:
            load, changed = next(self._loads), set()
            self._in_flight[load] = changed
            return self._generation, load, changed

    def _keep(self, external_id: str, state: UserState) -> None:
        """Store one user (lock held), dropping the oldest entry when full."""
        if external_id not in self._users and len(self._users) >= self.max_users:
            oldest = next(iter(self._users))
            self._ids.pop(UserState._make(self._users.pop(oldest)).id, None)
        self._users[external_id] = tuple(state)
        self._ids[state.id] = external_id

    def _start_warm(self, catalog: Catalog | None, generation: int) -> None:
        """Ask the warm-up thread to load (the catalog, unless given, and) the users for
        `generation`. One thread: a burst of resets queues one warm-up, not one per reset."""
        with self._lock:
            self._warm_wanted = (catalog, generation)
            self.warm_idle.clear()
        self._warm_event.set()

    def _warm_loop(self) -> None:
        while not self._stop.is_set():
            if not self._warm_event.wait(1.0):
                continue
            self._warm_event.clear()
            with self._lock:
                wanted, self._warm_wanted = self._warm_wanted, None
            if wanted is not None:
                try:
                    self._warm(*wanted)
                except Exception as exc:  # the cache still answers: users load on request
                    log.warning("pending cache: warm-up stopped: %s", exc)
            with self._lock:
                if self._warm_wanted is None:
                    self.warm_idle.set()

    def _warm(self, catalog: Catalog | None, generation: int) -> None:
        """Load the catalog (unless given) and then users page by page, while nothing changes."""
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            db.configure(conn)
            if catalog is None:
                catalog = load_catalog(conn, datetime.now(UTC))
                if not self._install(catalog, generation):
                    return  # something changed meanwhile, and asked for its own warm-up
                generation += 1
            after = 0
            while len(self._users) < self.max_users:
                _, load, changed = self._begin_load()
                try:
                    page = load_users(conn, catalog, after, WARM_PAGE)
                finally:
                    with self._lock:
                        del self._in_flight[load]
                with self._lock:
                    if generation != self._generation:
                        return  # everything was dropped meanwhile
                    for external_id, state in page:
                        if state.id not in changed and len(self._users) < self.max_users:
                            # Spread their reloads over max_age instead of all at once.
                            state = state._replace(loaded=state.loaded - random() * self.max_age)
                            self._users.setdefault(external_id, tuple(state))
                            self._ids[state.id] = external_id
                if len(page) < WARM_PAGE:
                    break
                after = page[-1][1].id
        # What is loaded now lives long: keep the collector's full passes off it (and off the
        # app's modules). Such a pass over 100,000 users took ~50 ms, every thread stopped,
        # whenever enough new objects had survived. One pass now clears what is already
        # garbage (a frozen cycle would never be freed), then everything left is frozen.
        gc.collect()
        gc.freeze()


def for_app(app: Flask | None = None) -> PendingCache | None:
    """This process's cache (started on first use after any fork), or None when disabled."""
    app = app or current_app._get_current_object()
    if not app.config.get("PENDING_CACHE", True):
        return None
    return db.per_process(
        app,
        "pending_cache",
        lambda: PendingCache(
            app.config["DATABASE_URL"],
            app.config["REDIS_URL"],
            max_users=app.config.get("PENDING_CACHE_USERS", 200_000),
            max_age=app.config.get("PENDING_CACHE_MAX_AGE", 3600),
            strict=app.config.get("PENDING_CACHE_STRICT", False),
        ),
    )


def close(app: Flask) -> None:
    db.close_per_process(app, "pending_cache")


def announce_decision(*user_ids: int) -> None:
    """After the API committed decisions: every process drops those users' state.

    Through Redis, because NOTIFY would serialise the API's commits (migration 0007). If Redis
    cannot take it, through PostgreSQL after all: a slow announcement beats a stale prompt.
    (Should a process die between the commit and this, the state it leaves in other processes
    is still reloaded after `PENDING_CACHE_MAX_AGE`.)
    """
    message = "u " + " ".join(map(str, user_ids))
    try:
        queues.redis_connection().publish(REDIS_CHANNEL, message)
    except RedisError as exc:
        log.warning("pending cache: announcing a decision through PostgreSQL: %s", exc)
        with fastpath.connection() as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, message))


# -- the API's answer -----------------------------------------------------------------------

KEY_SQL = pending.KEYS_SQL + " WHERE k.key_sha256 = %(sha)s"
TOUCH_SQL = """
    UPDATE api_keys SET last_used_at = now()
     WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""


def answer(key_sha256: str, external_id: str, now: datetime, base: str) -> str:
    """`GET …/pending` as JSON text: from memory when it can, else from the database."""
    cache = for_app()
    catalog = cache.catalog(now) if cache is not None else None
    key = catalog.keys.get(key_sha256) if catalog is not None else None
    if key is None:  # no cache, or a key created a moment ago: ask the database
        return _answer_from_database(key_sha256, external_id, now, base)
    _check_key(key)
    user = cache.user(catalog, external_id)
    if not pending.visible(key, user):
        raise NotFound(f"No user with the external id {external_id!r}.")
    return pending.render(catalog, user, external_id, base)


def _answer_from_database(key_sha256: str, external_id: str, now: datetime, base: str) -> str:
    FROM_DATABASE.inc()
    with fastpath.connection() as conn:
        row = conn.execute(KEY_SQL, {"sha": key_sha256}).fetchone()
        if row is None:
            raise Unauthorized("This API key is not valid.")
        key = pending.Key(row["id"], row["revoked"], row["scoped"])
        _check_key(key)
        body = pending.answer(conn, external_id, key.id if key.scoped else None, now, base)
    if body is None:
        raise NotFound(f"No user with the external id {external_id!r}.")
    return body


def _check_key(key: pending.Key) -> None:
    if key.revoked:
        raise Unauthorized("This API key was revoked.")
    touched = current_app.extensions.setdefault("api_key_touched", {})  # key id → monotonic
    last = touched.get(key.id)
    if last is None or time.monotonic() - last > 60:  # one write a minute, not per request
        touched[key.id] = time.monotonic()
        with fastpath.connection() as conn:
            conn.execute(TOUCH_SQL, {"id": key.id})
