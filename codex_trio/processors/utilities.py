"""Utility methods: ``fuzzyFileSearch`` and v1 ``gitDiffToRemote``.

``fuzzyFileSearch`` answers with the best 50 files under the roots (see ``core.fuzzy``), with the
reference's paths, scores, highlight indices and order. An empty query finds nothing; relative roots
are taken from the server's directory, and a root that does not exist contributes no files (no error,
like the reference). A request naming the ``cancellationToken`` of a search still running stops that
search, which then answers with what it had found so far. The walk runs in a worker thread (so a large
tree cannot stall the other requests) that notices within a few hundred entries that it was stopped,
and that gives up after ``core.fuzzy.DEFAULT_TIME_BUDGET`` seconds.

``gitDiffToRemote`` answers with the remote commit closest to HEAD and the working tree's diff against
it (see ``core.git_diff``), or the reference's error naming the cwd as given.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import trio

from ..protocol.utilities import (
    FuzzyFileSearchParams,
    FuzzyFileSearchResponse,
    FuzzyFileSearchResult,
    GitDiffToRemoteParams,
    GitDiffToRemoteResponse,
)
from ..router import Method, RequestContext
from ..rpc.errors import RpcError
from ..rpc.messages import RequestId

if TYPE_CHECKING:
    from ..app import AppServer, ClientSession

# Searches walking at the same time (each takes a worker thread); more wait for a turn.
MAX_CONCURRENT_SEARCHES = 2


class _Search:
    __slots__ = ("request_id", "stop")

    def __init__(self, request_id: RequestId) -> None:
        self.request_id = request_id
        self.stop = threading.Event()


def _newer(request: RequestId, than: RequestId) -> bool:
    """Whether ``request`` was sent after ``than``. Requests read in one go may start in either order,
    so the start order does not tell; integer ids do (clients number their requests upwards). Other
    ids: the request starting later counts as the newer one."""
    if isinstance(request, int) and isinstance(than, int):
        return request > than
    return True


class UtilitiesProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app
        # The running search of each (client, cancellation token).
        self._searches: dict[tuple[ClientSession, str], _Search] = {}
        self._limiter: trio.CapacityLimiter | None = None

    def methods(self) -> list[Method]:
        return [
            Method("fuzzyFileSearch", FuzzyFileSearchParams, self.fuzzy_file_search),
            Method("gitDiffToRemote", GitDiffToRemoteParams, self.git_diff_to_remote),
        ]

    async def fuzzy_file_search(
        self, ctx: RequestContext, params: FuzzyFileSearchParams
    ) -> FuzzyFileSearchResponse:
        from ..core.fuzzy import search_files

        search = _Search(ctx.request_id)
        token = params["cancellationToken"]
        key = (ctx.session, token) if token is not None else None
        if key is not None:
            running = self._searches.get(key)
            if running is not None and not _newer(search.request_id, running.request_id):
                search.stop.set()  # a newer search with this token is already under way
            else:
                if running is not None:
                    running.stop.set()
                self._searches[key] = search
        try:
            files: list[FuzzyFileSearchResult] = []
            if params["query"] and params["roots"] and not search.stop.is_set():
                if self._limiter is None:
                    self._limiter = trio.CapacityLimiter(MAX_CONCURRENT_SEARCHES)
                matches = await _in_thread(
                    search.stop,
                    self._limiter,
                    lambda: search_files(
                        params["query"],
                        params["roots"],
                        base_dir=os.getcwd(),
                        env=self.app.env,
                        stop=search.stop,
                    ),
                )
                files = [
                    {
                        "root": m.root,
                        "path": m.path,
                        "file_name": m.file_name,
                        "score": m.score,
                        "indices": m.indices,
                    }
                    for m in matches
                ]
        finally:
            if key is not None and self._searches.get(key) is search:
                del self._searches[key]
        return {"files": files}

    async def git_diff_to_remote(
        self, ctx: RequestContext, params: GitDiffToRemoteParams
    ) -> GitDiffToRemoteResponse:
        from ..core.git_diff import git_diff_to_remote, rust_debug_path

        cwd = params["cwd"]
        found = await git_diff_to_remote(cwd, base_dir=os.getcwd(), env=self.app.env)
        if found is None:
            raise RpcError(f"failed to compute git diff to remote for cwd: {rust_debug_path(cwd)}")
        return {"sha": found.sha, "diff": found.diff}


async def _in_thread(stop: threading.Event, limiter: trio.CapacityLimiter, work: Any) -> Any:
    """``work()`` in a worker thread. If this task is cancelled meanwhile, ``stop`` is set and the call
    waits for ``work`` to notice it and return, so the thread never outlives the call."""
    result: Any = None

    async def stop_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stop.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_when_cancelled)
        result = await trio.to_thread.run_sync(work, limiter=limiter)
        nursery.cancel_scope.cancel()
    return result
