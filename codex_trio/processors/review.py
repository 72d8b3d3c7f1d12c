"""v2 ``review/start``: a code review as a turn, of the thread itself (inline) or of a fork of it made
for the review (detached).

The review turn's work is done by a reviewer thread built here for that one turn, as the reference's
review sub-agent is: a new thread id (its requests' session), the reviewed thread's configuration and
initial context with the review model and our review instructions, web search off, its own rollout
(``source: {"subagent": "review"}``). It is not a loaded thread: no client can address it, and its
events reach clients only through the reviewed turn (core.review.ReviewRun).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

import trio

from ..protocol.v2 import Turn
from ..router import Method, RequestContext
from ..rpc.decode import Tagged
from ..rpc.errors import RpcError
from ..rpc.session import Reply
from ..thread_manager import (
    INTERRUPT_WAIT_SECONDS,
    LoadedThread,
    NullRecorder,
    RolloutRecorder,
    ThreadManager,
    settings_from_config,
)
from .threads import check_thread_id

if TYPE_CHECKING:
    from ..app import AppServer, ClientSession
    from ..core.review import ReviewRun
    from ..core.thread import ActiveTurn, CodexThread


class UncommittedChangesTarget(TypedDict):
    type: Literal["uncommittedChanges"]


class BaseBranchTarget(TypedDict):
    type: Literal["baseBranch"]
    branch: str


class CommitTarget(TypedDict):
    type: Literal["commit"]
    sha: str
    title: str | None


class CustomTarget(TypedDict):
    type: Literal["custom"]
    instructions: str


ReviewTarget = Annotated[
    UncommittedChangesTarget | BaseBranchTarget | CommitTarget | CustomTarget, Tagged("ReviewTarget")
]
ReviewDelivery = Literal["inline", "detached"]


class ReviewStartParams(TypedDict):
    threadId: str
    target: ReviewTarget
    delivery: ReviewDelivery | None


class ReviewStartResponse(TypedDict):
    turn: Turn
    reviewThreadId: str


# The headers that tell the provider a request comes from the review sub-agent, which may not search
# the web.
REVIEWER_HEADERS = {"x-oai-web-search-eligible": "false", "x-openai-subagent": "review"}
REVIEWER_SOURCE = {"subagent": "review"}


def review_turn(turn_id: str, hint: str) -> Turn:
    """The review turn as review/start answers it and turn/started announces it: in progress, with the
    review's label as its user message (both ids are the turn id)."""
    item = {
        "type": "userMessage",
        "id": turn_id,
        "content": [{"type": "text", "text": hint, "text_elements": []}],
    }
    return {"id": turn_id, "items": [item], "status": "inProgress", "error": None}


class ReviewProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app

    @property
    def manager(self) -> ThreadManager:
        return self.app.threads

    def methods(self) -> list[Method]:
        return [Method("review/start", ReviewStartParams, self.start)]

    async def start(self, ctx: RequestContext, params: ReviewStartParams) -> Reply:
        from ..core.review import InvalidReviewTarget, ReviewRun, normalize_target

        thread_id = check_thread_id(params["threadId"])
        parent = self.manager.get(thread_id)
        if parent is None:
            raise RpcError(f"thread not found: {thread_id}")
        try:
            target = normalize_target(params["target"])
        except InvalidReviewTarget as exc:
            raise RpcError(exc.message) from None
        if params["delivery"] == "detached":
            loaded = await self._fork_for_review(ctx, parent)
        else:
            loaded = parent
            self.manager.subscribe(loaded, ctx.conn)
        thread = loaded.thread
        # Like the reference, a review replaces whatever runs on the thread (that turn ends as
        # "replaced" before the review starts).
        replaced = thread.replace_active_turn()
        turn = thread.begin_turn()
        run = ReviewRun(thread, turn, target)
        response: ReviewStartResponse = {"turn": review_turn(turn.id, run.hint), "reviewThreadId": loaded.id}

        async def begin() -> None:
            started = {"threadId": loaded.id, "turn": review_turn(turn.id, run.hint)}
            await self.manager.broadcast(loaded, [("turn/started", started)])
            self.manager.start_turn_task(ctx.conn, self._run, loaded, run, ctx.session, replaced)

        return Reply(dict(response), after=begin)

    async def _fork_for_review(self, ctx: RequestContext, parent: LoadedThread) -> LoadedThread:
        """The detached review's thread: a fork of the reviewed thread with its configuration, announced
        (startup events, thread/started) before review/start answers, as the reference does."""
        if parent.path is None:
            # The reference forks from the rollout; an ephemeral thread has none.
            raise RpcError(f"no rollout found for thread id {parent.id}")
        summary = await self.manager.store.read_summary(
            parent.path, default_provider=self.manager.default_provider()
        )
        forked, _turns = await self.manager.fork_thread(parent.path, summary, parent.config, ctx.session)
        self.manager.subscribe(forked, ctx.conn)
        await self.manager.announce_startup(forked)
        await self.manager.broadcast(forked, [("thread/started", {"thread": forked.to_thread()})])
        return forked

    async def _run(
        self, loaded: LoadedThread, run: ReviewRun, session: ClientSession, replaced: ActiveTurn | None
    ) -> None:
        if replaced is not None:
            with trio.move_on_after(INTERRUPT_WAIT_SECONDS):
                await replaced.done.wait()
        built: list[CodexThread] = []

        async def make_reviewer() -> CodexThread:
            built.append(await self._reviewer(loaded, run, session))
            return built[-1]

        try:
            await run.run(make_reviewer, env=self.manager.env)
        finally:
            for reviewer in built:
                if isinstance(reviewer.recorder, RolloutRecorder):
                    reviewer.recorder.close()

    async def _reviewer(self, loaded: LoadedThread, run: ReviewRun, session: ClientSession) -> CodexThread:
        """The reviewer thread of one review: the reviewed thread's configuration (its thread/start
        settings, not later turn overrides), the review model (config ``review_model``, else the model
        the thread uses now), our review instructions, web search off."""
        from .. import REFERENCE_VERSION
        from ..core import rollout as ro
        from ..core.model_client import ModelClient
        from ..core.review import REVIEW_INSTRUCTIONS, ReviewerChannel
        from ..core.thread import CodexThread, ToolOptions

        config = loaded.config
        parent = loaded.thread
        review_model = config.raw.get("review_model")
        model = review_model if isinstance(review_model, str) else parent.settings.model
        provider = dataclasses.replace(
            config.model_provider, http_headers={**config.model_provider.http_headers, **REVIEWER_HEADERS}
        )
        client = ModelClient(
            provider,
            http=self.manager.http,
            auth=self.manager.auth.provider_for(provider),
            originator=session.originator,
            user_agent=session.user_agent or session.originator,
            environ=self.manager.env,
        )

        def stream(request: Any, *, session_id: str) -> Any:
            return client.stream(request, session_id=session_id, web_search_eligible=False)

        now = ro.utc_now()
        thread_id = ro.new_thread_id(now)
        history = await self.manager.initial_context(config)
        recorder: Any = NullRecorder()
        if loaded.path is not None:
            writer = ro.RolloutWriter.create(
                self.manager.codex_home,
                thread_id,
                ro.SessionMetaFields(
                    cwd=str(config.cwd),
                    originator=session.originator,
                    cli_version=REFERENCE_VERSION,
                    model_provider=config.model_provider_id,
                    base_instructions=REVIEW_INSTRUCTIONS,
                    source=REVIEWER_SOURCE,
                ),
                created=now,
            )
            recorder = RolloutRecorder(writer)
        recorder.record_items(history)
        return CodexThread(
            thread_id=thread_id,
            settings=dataclasses.replace(settings_from_config(config), model=model),
            base_instructions=REVIEW_INSTRUCTIONS,
            history=history,
            recorder=recorder,
            sink=run.relay,
            model_stream=stream,
            stream_max_retries=provider.stream_max_retries,
            tool_options=ToolOptions(
                features=dict(config.features),
                web_search="disabled",
                view_image=config.tools.view_image,
            ),
            client=ReviewerChannel(parent.client, run.turn.id),
            env=parent.env,
            shell_environment_policy=parent.shell_environment_policy,
            rules_file=self.manager.codex_home / "rules" / "default.rules",
        )
