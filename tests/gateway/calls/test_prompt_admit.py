"""prompts/get admission: listed prompt, declared argument names only, strings only (pure half)."""

from __future__ import annotations

import pytest

from gateway.calls.admit import InvalidArguments
from gateway.calls.prompt_admit import check_prompt_arguments, find_prompt

REPORT = {"name": "report", "arguments": [{"name": "year", "required": True}, {"name": "format"},
                                           {"description": "no name: ignored"}]}


def test_find_prompt_matches_names_exactly():
    prompts = [{"name": "Report"}, "junk", REPORT]
    assert find_prompt(prompts, "report") is REPORT
    assert find_prompt(prompts, "report ") is None and find_prompt([], "report") is None


@pytest.mark.parametrize("arguments", [{"year": "2024"}, {"year": "2024", "format": "pdf"}, {"year": ""}])
def test_declared_string_arguments_are_admitted(arguments):
    check_prompt_arguments("report", REPORT, arguments)


@pytest.mark.parametrize("arguments,problem", [
    ({"year": "2024", "extra": "x"}, "/extra: is not an argument of the prompt"),
    ({"year": 2024}, "/year: must be of type string"),
    ({"year": ["2024"]}, "/year: must be of type string"),
    ({"year": None}, "/year: must be of type string"),
    ({}, "/year: is required"),
    (None, "/year: is required"),
    (["2024"], "(arguments): must be an object"),
    ({"a/b": "x", "year": "1"}, "/a~1b: is not an argument"),
])
def test_anything_else_is_refused_naming_the_argument(arguments, problem):
    with pytest.raises(InvalidArguments) as caught:
        check_prompt_arguments("report", REPORT, arguments)
    assert problem in caught.value.message
    assert caught.value.rpc_code == -32602 and caught.value.status == 400


def test_a_prompt_without_declared_arguments_takes_none():
    check_prompt_arguments("hello", {"name": "hello"}, {})
    with pytest.raises(InvalidArguments):
        check_prompt_arguments("hello", {"name": "hello", "arguments": "bogus"}, {"x": "1"})
