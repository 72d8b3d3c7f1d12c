"""The serde-compatible decoder: messages as the reference words them."""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

import pytest

from codex_trio.rpc.decode import U32, DecodeError, Tagged, decode


class Text(TypedDict):
    type: Literal["text"]
    text: str


class Image(TypedDict):
    type: Literal["image"]
    url: str


Input = Annotated[Text | Image, Tagged("UserInput")]


class Amend(TypedDict):
    acceptWithExecpolicyAmendment: dict[str, list[str]]


Decision = Literal["accept", "decline"] | Amend


class Params(TypedDict):
    threadId: str
    input: list[Input]
    limit: Annotated[int, U32] | None
    policy: Literal["untrusted", "on-failure", "on-request", "never"] | None
    decision: Decision | None
    flag: bool | None


GOOD = {"threadId": "t", "input": [{"type": "text", "text": "hi"}]}


def err(value: object) -> str:
    with pytest.raises(DecodeError) as info:
        decode(Params, value)
    return str(info.value)


def test_valid_params_are_returned_with_missing_options_as_none() -> None:
    assert decode(Params, {**GOOD, "extra": 1}) == {
        **GOOD,
        "limit": None,
        "policy": None,
        "decision": None,
        "flag": None,
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({**GOOD, "threadId": 5}, "invalid type: integer `5`, expected a string"),
        ({"threadId": "t"}, "missing field `input`"),
        ({**GOOD, "input": {}}, "invalid type: map, expected a sequence"),
        ({**GOOD, "input": [{"text": "a"}]}, "missing field `type`"),
        ({**GOOD, "input": [{"type": "text"}]}, "missing field `text`"),
        (
            {**GOOD, "input": [{"type": "bogus"}]},
            "unknown variant `bogus`, expected `text` or `image`",
        ),
        ({**GOOD, "input": [5]}, "invalid type: integer `5`, expected internally tagged enum UserInput"),
        ({**GOOD, "limit": -1}, "invalid value: integer `-1`, expected u32"),
        ({**GOOD, "limit": 1.5}, "invalid type: floating point `1.5`, expected u32"),
        ({**GOOD, "limit": "5"}, 'invalid type: string "5", expected u32'),
        ({**GOOD, "limit": True}, "invalid type: boolean `true`, expected u32"),
        ({**GOOD, "policy": 5}, "invalid type: integer `5`, expected string or map"),
        (
            {**GOOD, "policy": "sometimes"},
            "unknown variant `sometimes`, expected one of `untrusted`, `on-failure`, `on-request`, `never`",
        ),
        (
            {**GOOD, "policy": {"a": 1}},
            "unknown variant `a`, expected one of `untrusted`, `on-failure`, `on-request`, `never`",
        ),
        (
            {**GOOD, "decision": "maybe"},
            "unknown variant `maybe`, expected one of `accept`, `decline`, `acceptWithExecpolicyAmendment`",
        ),
        ({**GOOD, "flag": 1}, "invalid type: integer `1`, expected a boolean"),
        ([], "invalid length 0, expected struct Params with 6 elements"),
        ("x", 'invalid type: string "x", expected struct Params'),
    ],
)
def test_errors_use_serde_wording(value: object, message: str) -> None:
    assert err(value) == message


def test_an_enum_with_data_variants() -> None:
    amend = {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["ls"]}}
    assert decode(Params, {**GOOD, "decision": amend})["decision"] == amend
    assert decode(Params, {**GOOD, "decision": "accept"})["decision"] == "accept"
