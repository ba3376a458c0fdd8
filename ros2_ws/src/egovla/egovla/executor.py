"""A single-threaded rclpy executor that keeps its wait set between wake-ups.

rclpy's ``SingleThreadedExecutor`` rebuilds its wait set from scratch on every wake-up: it lists every node's
subscriptions, timers, services, clients, guard conditions and waitables, asks each one's callback group whether it
may run, enters every handle through a ``contextlib.ExitStack``, creates a new ``WaitSet``, and wraps each ready
callback in a ``Task`` whose completion triggers the executor's guard condition -- so every callback is followed by
one more wake-up that finds nothing to do. For the control container (4 subscriptions, 7 timers, 21 services) one
wake-up costs 210-340 us of Python on this machine, two per message.

``LeanExecutor`` does the same work with the lists, the handles' pointers and the ``WaitSet`` kept until an entity
is created or destroyed or a node is added or removed (rclpy wakes the executor for each of those), plain callbacks
called directly, and no wake-up after a callback. What it leaves out, because a single thread makes it moot:
callback groups (every callback runs to completion before the next one starts). Coroutine callbacks, tasks from
``create_task``, futures (``spin_until_future_complete``), clients and waitables (QoS event handlers) work as with
rclpy's executors: they run as ``rclpy.task.Task`` objects.

Handles are entered (kept from being destroyed) for the duration of each wait, as rclpy does; a handle destroyed
meanwhile (``InvalidHandle``) makes the executor rebuild its lists.
"""

from __future__ import annotations

import inspect

from rclpy.exceptions import InvalidHandle, TimerCancelledError
from rclpy.executors import Executor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.subscription import Subscription
from rclpy.task import Task
from rclpy.timer import TimerInfo
from rclpy.utilities import timeout_sec_to_nsec
from rclpy.waitable import NumberOfEntities


async def _await(awaitable):
    return await awaitable


class _Entities:
    """What one wait needs, gathered once: the entities of every node and their handles' pointers."""

    def __init__(self, executor: LeanExecutor):
        nodes = executor.get_nodes()
        self.subscriptions = [(s, s.handle.pointer) for n in nodes for s in n.subscriptions]
        self.timers = [(t, t.handle.pointer, _timer_info_argument(t.callback)) for n in nodes for t in n.timers]
        self.services = [(s, s.handle.pointer) for n in nodes for s in n.services]
        self.clients = [(c, c.handle.pointer) for n in nodes for c in n.clients]
        self.guards = [(g, g.handle.pointer) for n in nodes for g in n.guards]
        self.waitables = [w for n in nodes for w in n.waitables]
        own = [g for g in (executor._guard, executor._sigint_gc) if g is not None]
        self.own_guard = executor._guard.handle.pointer if executor._guard is not None else None
        self.handles = ([e.handle for e, *_ in (*self.subscriptions, *self.timers, *self.services, *self.clients,
                                                *self.guards)] + [g.handle for g in own])
        count = NumberOfEntities(len(self.subscriptions), len(self.guards) + len(own), len(self.timers),
                                 len(self.clients), len(self.services))
        for w in self.waitables:
            count += w.get_num_entities()
        context = executor.context.handle
        with context:
            self.wait_set = _rclpy.WaitSet(count.num_subscriptions, count.num_guard_conditions, count.num_timers,
                                           count.num_clients, count.num_services, count.num_events, context)
        self.adders = ([(self.wait_set.add_subscription, s.handle) for s, _ in self.subscriptions] +
                       [(self.wait_set.add_timer, t.handle) for t, *_ in self.timers] +
                       [(self.wait_set.add_service, s.handle) for s, _ in self.services] +
                       [(self.wait_set.add_client, c.handle) for c, _ in self.clients] +
                       [(self.wait_set.add_guard_condition, g.handle) for g, _ in self.guards] +
                       [(self.wait_set.add_guard_condition, g.handle) for g in own])

    def destroy(self):
        self.wait_set.destroy_when_not_in_use()


def _take(entity, take, *args):
    """``take(*args)`` with the entity's handle held (as rclpy does); None if the entity was destroyed."""
    try:
        with entity.handle:
            return take(*args)
    except InvalidHandle:
        return None


def _timer_info_argument(callback) -> str | None:
    """The name of the callback's ``TimerInfo`` parameter, if it has one (rclpy then passes the call's info)."""
    if callback is None:
        return None
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return None
    return next((p.name for p in parameters if p.annotation is TimerInfo or p.annotation == "TimerInfo"), None)


class LeanExecutor(Executor):
    """Single-threaded executor; see the module docstring. Use it as ``SingleThreadedExecutor``."""

    def __init__(self, *, context=None):
        super().__init__(context=context)
        self._entities: _Entities | None = None

    # -- waiting ---------------------------------------------------------------------------------------------
    def _wait(self, timeout_nsec: int):
        """Wait once; returns the ready (subscriptions, timers, services, clients, guards) pointers and the ready
        waitables, or None when a handle turned out destroyed (the lists are rebuilt on the next call)."""
        if self._entities is None:
            self._entities = _Entities(self)
        entities = self._entities
        entered = []
        try:
            try:
                for handle in entities.handles:
                    handle.__enter__()
                    entered.append(handle)
                context = self.context.handle
                context.__enter__()
                entered.append(context)
            except InvalidHandle:
                self._invalidate()
                return None
            wait_set = entities.wait_set
            wait_set.clear_entities()
            for add, handle in entities.adders:
                add(handle)
            for waitable in entities.waitables:
                waitable.add_to_wait_set(wait_set)
            wait_set.wait(timeout_nsec)
            ready = tuple(set(wait_set.get_ready_entities(kind)) for kind in
                          ("subscription", "timer", "service", "client", "guard_condition"))
            waitables = [w for w in entities.waitables if w.is_ready(wait_set)]
        finally:
            for handle in reversed(entered):
                handle.__exit__(None, None, None)
        return ready, waitables

    def _invalidate(self):
        if self._entities is not None:
            self._entities.destroy()
            self._entities = None

    # -- running callbacks -----------------------------------------------------------------------------------
    def _call(self, callback, *args):
        """Run a callback; a coroutine function (or one returning an awaitable) becomes a task."""
        if inspect.iscoroutinefunction(callback):
            self._start_task(callback, args)
            return None
        result = callback(*args)
        if inspect.isawaitable(result):
            self._start_task(_await, (result,))
            return None
        return result

    def _start_task(self, callback, args):
        task = Task(callback, args, executor=self)
        with self._tasks_lock:
            self._tasks.append((task, None, None))
        self._run_tasks()

    def _run_tasks(self):
        with self._tasks_lock:
            tasks = [t for t, _, _ in self._tasks]
        if not tasks:
            return
        for task in tasks:
            if not task.executing() and not task.done():
                task()
        with self._tasks_lock:
            self._tasks = [entry for entry in self._tasks if not entry[0].done() and not entry[0].cancelled()]
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()

    def _dispatch(self, ready, waitables):
        subs_ready, timers_ready, services_ready, clients_ready, guards_ready = ready
        entities = self._entities
        if entities.own_guard in guards_ready:
            # an entity or node came or went (or a task or future woke us): serve only what is still there
            self._invalidate()
            self._entities = entities = _Entities(self)
            waitables = [w for w in waitables if any(w is v for v in entities.waitables)]
        for timer, pointer, info_argument in entities.timers:
            if pointer in timers_ready:
                try:
                    with timer.handle:
                        if not timer.handle.is_timer_ready():
                            continue
                        info = timer.handle.call_timer_with_info()
                except (InvalidHandle, TimerCancelledError):
                    continue
                if timer.callback is None:
                    continue
                if info_argument is None:
                    self._call(timer.callback)
                else:
                    self._call(timer.callback, TimerInfo(expected_call_time=info["expected_call_time"],
                                                         actual_call_time=info["actual_call_time"],
                                                         clock_type=timer.clock.clock_type))
        for sub, pointer in entities.subscriptions:
            if pointer in subs_ready:
                taken = _take(sub, sub.handle.take_message, sub.msg_type, sub.raw)
                if taken is None:
                    continue
                if sub._callback_type is Subscription.CallbackType.MessageOnly:
                    self._call(sub.callback, taken[0])
                else:
                    self._call(sub.callback, *taken)
        for guard, pointer in entities.guards:
            if pointer in guards_ready and guard.callback is not None:
                self._call(guard.callback)
        for client, pointer in entities.clients:
            if pointer in clients_ready:
                header, response = _take(client, client.handle.take_response,
                                         client.srv_type.Response) or (None, None)
                if header is None:
                    continue
                try:
                    future = client.get_pending_request(header.request_id.sequence_number)
                except KeyError:
                    continue  # the request was cancelled
                future._set_executor(self)
                future.set_result(response)
        for service, pointer in entities.services:
            if pointer in services_ready:
                request, header = _take(service, service.handle.service_take_request,
                                        service.srv_type.Request) or (None, None)
                if header is None:
                    continue
                if inspect.iscoroutinefunction(service.callback):
                    async def respond(srv=service, req=request, hdr=header):
                        srv.send_response(await srv.callback(req, srv.srv_type.Response()), hdr)
                    self._start_task(respond, ())
                else:
                    service.send_response(service.callback(request, service.srv_type.Response()), header)
        for waitable in waitables:
            data = waitable.take_data()
            for future in waitable._futures:
                future._set_executor(self)
            self._start_task(waitable.execute, (data,))

    # -- Executor API ----------------------------------------------------------------------------------------
    def spin_once(self, timeout_sec: float | None = None) -> None:
        """Wait (up to ``timeout_sec``; None: as long as it takes) and run every callback that is ready."""
        self._spin_once(timeout_sec)

    def _spin_once(self, timeout_sec=None, condition=lambda: False) -> None:
        if self._is_shutdown or not self.context.ok() or condition():
            return
        self._run_tasks()
        if condition():
            return
        timeout = getattr(timeout_sec, "timeout", timeout_sec)  # a TimeoutObject from spin_until_future_complete
        waited = self._wait(timeout_sec_to_nsec(timeout))
        if waited is None or self._is_shutdown:
            return
        self._dispatch(*waited)

    def spin_once_until_future_complete(self, future, timeout_sec=None) -> None:
        future.add_done_callback(lambda _: self.wake())
        self._spin_once(timeout_sec, future.done)

    def _spin_once_until_future_complete(self, future, timeout_sec=None) -> None:
        self._spin_once(timeout_sec, future.done)

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        done = super().shutdown(timeout_sec)
        self._invalidate()
        return done
