"""The plain-text tool-calling fallback: prompt rendering, reply parsing, history rewriting (no model needed)."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from agentevo.llm.fenced_tools import (
    ERROR_KEY,
    messages_to_plain,
    normalise_tool_choice,
    parse_action,
    render_action,
    render_tools_prompt,
    reply_to_message,
    tool_specs,
    with_tools_prompt,
)


@tool
def add(a: int, b: int) -> int:
    """Add two integers and return the sum."""
    return a + b


class SearchArgs(BaseModel):
    query: str = Field(description="What to look for.")
    limit: int = Field(5, description="At most this many results.")


@tool(args_schema=SearchArgs)
def search(query: str, limit: int = 5) -> str:
    """Search the notes."""
    return f"{limit} results for {query}"


TOOLS = [add, search]


def block(payload: str, lang: str = "action") -> str:
    return f"```{lang}\n{payload}\n```"


# ------------------------------------------------------------------------------------------------- render


def test_prompt_lists_each_tool_with_signature_and_description():
    prompt = render_tools_prompt(TOOLS)
    assert "- add(a: integer, b: integer): Add two integers and return the sum." in prompt
    assert "- search(query: string, limit: integer (optional)): Search the notes." in prompt
    assert "```action" in prompt


def test_prompt_shows_full_schema_only_when_it_says_more_than_the_signature():
    prompt = render_tools_prompt(TOOLS)
    schema_lines = [line for line in prompt.splitlines() if "JSON schema" in line]
    assert len(schema_lines) == 1 and "What to look for." in schema_lines[0]  # search has descriptions
    schema = json.loads(schema_lines[0].split("JSON schema): ", 1)[1])
    assert schema["required"] == ["query"] and "title" not in json.dumps(schema)


def test_prompt_example_is_itself_a_valid_call():
    prompt = render_tools_prompt([add])
    parsed = parse_action(prompt, [add])
    assert parsed.error is None
    assert parsed.tool_call["name"] == "add" and set(parsed.tool_call["args"]) == {"a", "b"}


def test_prompt_tool_choice():
    assert "You must call the tool add now." in render_tools_prompt(TOOLS, tool_choice="add")
    assert "You must call a tool now." in render_tools_prompt(TOOLS, tool_choice="any")
    assert "must call" not in render_tools_prompt(TOOLS, tool_choice="auto")


def test_tool_choice_forms_are_normalised():
    assert normalise_tool_choice(None) is None and normalise_tool_choice("auto") == "auto"
    assert normalise_tool_choice(True) == normalise_tool_choice("required") == "any"
    assert normalise_tool_choice({"type": "function", "function": {"name": "add"}}) == "add"


def test_tool_specs_accept_dicts_and_reject_duplicate_names():
    spec = {"type": "function", "function": {"name": "ping", "description": "Ping.", "parameters": {}}}
    assert [s["name"] for s in tool_specs([spec, add])] == ["ping", "add"]
    try:
        tool_specs([add, add])
    except ValueError as exc:
        assert "add" in str(exc)
    else:
        raise AssertionError("duplicate tool names were accepted")


# ------------------------------------------------------------------------------------------------- parse


def test_parse_action_block():
    text = "I will add them.\n" + block('{"tool": "add", "args": {"a": 2, "b": 3}}')
    parsed = parse_action(text, TOOLS)
    assert parsed.error is None
    assert parsed.tool_call["name"] == "add" and parsed.tool_call["args"] == {"a": 2, "b": 3}
    assert parsed.tool_call["id"].startswith("call_") and parsed.tool_call["type"] == "tool_call"
    assert parsed.text == "I will add them."


def test_parse_tolerates_json_fence_trailing_text_and_pretty_printing():
    payload = json.dumps({"tool": "search", "args": {"query": "cats"}}, indent=2)
    parsed = parse_action(block(payload, "json") + "\nThis will find cats.", TOOLS)
    assert parsed.tool_call["name"] == "search" and parsed.tool_call["args"] == {"query": "cats"}
    assert parsed.text == "This will find cats."


def test_parse_tolerates_text_after_the_json_inside_the_block():
    parsed = parse_action(block('{"tool": "add", "args": {"a": 1, "b": 1}} and then I add'), TOOLS)
    assert parsed.tool_call["args"] == {"a": 1, "b": 1}


def test_json_fence_without_a_tool_is_a_plain_answer():
    text = "Here is the config:\n" + block('{"debug": true}', "json")
    parsed = parse_action(text, TOOLS)
    assert parsed.tool_call is None and parsed.error is None and parsed.text == text


def test_no_block_is_a_plain_answer_without_error():
    parsed = parse_action("The sum is 5.", TOOLS)
    assert parsed.tool_call is None and parsed.error is None and parsed.text == "The sum is 5."


def test_python_code_block_is_a_plain_answer():
    parsed = parse_action("```python\ndef f():\n    return 1\n```", TOOLS)
    assert parsed.tool_call is None and parsed.error is None


def test_malformed_json_reports_an_error():
    text = block('{"tool": "add", "args": {"a": 2, "b": }}')
    parsed = parse_action(text, TOOLS)
    assert parsed.tool_call is None
    assert "not valid JSON" in parsed.error
    assert parsed.text == text


def test_unknown_tool_reports_the_known_ones():
    parsed = parse_action(block('{"tool": "multiply", "args": {"a": 2, "b": 3}}'), TOOLS)
    assert parsed.tool_call is None
    assert "unknown tool 'multiply'" in parsed.error and "add, search" in parsed.error


def test_args_must_be_an_object_and_required_args_present():
    assert "must be a JSON object" in parse_action(block('{"tool": "add", "args": [2, 3]}'), TOOLS).error
    assert (
        "missing required argument(s): b"
        in parse_action(block('{"tool": "add", "args": {"a": 2}}'), TOOLS).error
    )
    assert 'no "tool" name' in parse_action(block('{"args": {"a": 2}}'), TOOLS).error


def test_args_given_as_a_json_string_are_accepted():
    parsed = parse_action(block('{"tool": "add", "args": "{\\"a\\": 2, \\"b\\": 3}"}'), TOOLS)
    assert parsed.tool_call["args"] == {"a": 2, "b": 3}


def test_multiple_blocks_use_the_first_and_count_the_rest():
    text = (
        block('{"tool": "add", "args": {"a": 1, "b": 2}}')
        + "\n"
        + block('{"tool": "search", "args": {"query": "x"}}')
    )
    parsed = parse_action(text, TOOLS)
    assert parsed.tool_call["name"] == "add" and parsed.ignored_blocks == 1
    message = reply_to_message(AIMessage(content=text), TOOLS)
    assert message.response_metadata["fenced_action_ignored_blocks"] == 1


def test_unterminated_block_is_accepted_when_its_json_is_complete():
    parsed = parse_action('```action\n{"tool": "add", "args": {"a": 1, "b": 2}}\n', TOOLS)
    assert parsed.tool_call["args"] == {"a": 1, "b": 2}
    cut = parse_action('```action\n{"tool": "add", "args": {"a": 1,', TOOLS)
    assert cut.tool_call is None and "cut off" in cut.error


def test_unfenced_action_and_smollm2_native_format_are_accepted():
    bare = parse_action('{"tool": "add", "args": {"a": 4, "b": 5}}', TOOLS)
    assert bare.tool_call["args"] == {"a": 4, "b": 5}
    native = parse_action('<tool_call>[{"name": "add", "arguments": {"a": 1, "b": 9}}]</tool_call>', TOOLS)
    assert native.tool_call["name"] == "add" and native.tool_call["args"] == {"a": 1, "b": 9}


def test_reply_to_message_sets_tool_calls_or_the_error():
    usage = {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    good = reply_to_message(
        AIMessage(content=block('{"tool": "add", "args": {"a": 1, "b": 2}}'), usage_metadata=usage), TOOLS
    )
    assert good.tool_calls[0]["name"] == "add" and good.usage_metadata == usage
    assert ERROR_KEY not in good.response_metadata and "raw_text" in good.response_metadata
    bad = reply_to_message(AIMessage(content=block("{nope}")), TOOLS)
    assert not bad.tool_calls and "not valid JSON" in bad.response_metadata[ERROR_KEY]


# ------------------------------------------------------------------------------------------------- history


def test_history_tool_turns_become_plain_text():
    call = {"name": "add", "args": {"a": 2, "b": 3}, "id": "call_1", "type": "tool_call"}
    history = [
        SystemMessage(content="Be brief."),
        HumanMessage(content="2+3?"),
        AIMessage(content="Adding.", tool_calls=[call]),
        ToolMessage(content="5", tool_call_id="call_1"),
        ToolMessage(content="boom", tool_call_id="call_x", name="search", status="error"),
    ]
    plain = messages_to_plain(history)
    assert [type(m) for m in plain] == [SystemMessage, HumanMessage, AIMessage, HumanMessage, HumanMessage]
    assert (
        plain[2].content == "Adding.\n" + render_action("add", {"a": 2, "b": 3}) and not plain[2].tool_calls
    )
    assert plain[3].content == "Tool result (add):\n5"
    assert plain[4].content == "Tool result (search) (error):\nboom"
    # what the model wrote round-trips through the parser
    assert parse_action(plain[2].content, TOOLS).tool_call["args"] == {"a": 2, "b": 3}


def test_tools_prompt_joins_the_first_system_message_or_leads():
    merged = with_tools_prompt([SystemMessage(content="Be brief."), HumanMessage(content="hi")], "TOOLS")
    assert merged[0].content == "Be brief.\n\nTOOLS" and len(merged) == 2
    led = with_tools_prompt([HumanMessage(content="hi")], "TOOLS")
    assert isinstance(led[0], SystemMessage) and led[0].content == "TOOLS" and len(led) == 2
