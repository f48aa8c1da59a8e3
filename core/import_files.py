"""Reading import files that may be hostile, huge or simply odd: bounded in memory, strict on input.

Every problem ends as ONE `ImportFileError` naming the file and the position (line, or JSON entry
and byte offset); nothing here lets a `UnicodeDecodeError`, `csv.Error` or `RecursionError` escape.

- Lines are read with a maximum length (`MAX_LINE_BYTES`), so a 200 MB line or `/dev/zero` costs at
  most that much memory before it is refused.
- Text must be UTF-8 (a UTF-8 BOM is fine). Decision: other encodings are REFUSED, with the line and
  byte offset of the first invalid byte, rather than guessed. Latin-1/cp1252 decode any byte
  sequence, so a guess would silently store mojibake for a file that is really cp1251, Shift-JIS or
  corrupt; a refusal tells the user exactly what to re-save. UTF-16 files (Excel's "Unicode text")
  are recognised by their BOM and refused by name.
- JSON is parsed as a stream (ijson, yajl2 C backend): memory holds one entry at a time, whatever
  the file size. Containers are built here, iteratively, with a depth cap, because ijson's own
  object builder keeps a prefix string per level (100,000 levels took minutes and gigabytes); a
  single value longer than `MAX_VALUE_BYTES` is refused before it is buffered any further.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import ijson

from core.errors import ImportFileError

MAX_LINE_BYTES = 1 << 20  # a scrobble line is well under 2 KB; 1 MiB leaves room for any honest file
MAX_VALUE_BYTES = 1 << 20  # the same bound for one JSON value (string, number) or whitespace run
MAX_JSON_DEPTH = 16  # a streaming-history entry is flat (depth 1); anything this deep is not one
JSON_CHUNK = 1 << 16
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ImportFileError(path, None, f"cannot open ({exc.strerror})") from None


def _refuse_utf16(path: Path, head: bytes) -> None:
    if head.startswith(_UTF16_BOMS):
        raise ImportFileError(path, 1, "is UTF-16 text; save it as UTF-8 and import again", position="byte 0")


def read_lines(path: Path, *, encoding: str = "utf-8",
               max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """(line number, text with its line ending) for each line; a UTF-8 BOM is dropped.

    `encoding` exists for dataset files documented in another encoding (HetRec's tags.dat is
    Latin-1); user files are always read as UTF-8.
    """
    with _open(path) as handle:
        offset = 0
        lineno = 0
        while raw := handle.readline(max_line_bytes + 1):
            lineno += 1
            if lineno == 1:
                _refuse_utf16(path, raw)
                if raw.startswith(codecs.BOM_UTF8):
                    raw, offset = raw[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                raise ImportFileError(path, lineno, f"line is longer than {max_line_bytes:,} bytes "
                                                    f"(starts at byte {offset:,}); is this the right file?")
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ImportFileError(path, lineno, f"not UTF-8 text (invalid byte at byte {offset + exc.start:,}); "
                                                    "save the file as UTF-8 and import again") from None
            offset += len(raw)
            yield lineno, text


# --- JSON --------------------------------------------------------------------------------------


class _ValueTooLong(Exception):
    pass


class _CountingReader:
    """The file as ijson reads it: counts bytes (for positions), drops a UTF-8 BOM, refuses UTF-16,
    and stops a value (or a run of whitespace) that grows past `limit` without producing an event."""

    def __init__(self, path: Path, handle: IO[bytes], limit: int) -> None:
        self.path, self.handle, self.limit = path, handle, limit
        self.offset = 0
        self.since_event = 0

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        data = self.handle.read(size if size > 0 else JSON_CHUNK)
        if self.offset == 0 and data:
            _refuse_utf16(self.path, data)
            if data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8):]
                self.offset = len(codecs.BOM_UTF8)
        self.offset += len(data)
        self.since_event += len(data)
        if self.since_event > self.limit + JSON_CHUNK:
            raise _ValueTooLong
        return data


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def _json_problem(exc: Exception) -> str:
    """yajl's message without the file excerpt it appends (raw bytes from the file, several lines)."""
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    first = str(text).strip().splitlines()[0] if str(text).strip() else "unexpected end"
    if "UTF8" in first or isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text; save the file as UTF-8 and import again"
    return f"not valid JSON ({first[:80]})"


def _build(event: str, value: Any, events: Iterator[tuple[str, Any]], seen: Callable[[], None],
           max_depth: int) -> Any:
    """One JSON value from ijson's flat events, iteratively (no recursion), at most `max_depth` deep."""
    if event not in ("start_map", "start_array"):
        return value
    root: dict[str, Any] | list[Any] = {} if event == "start_map" else []
    stack: list[dict[str, Any] | list[Any]] = [root]
    key = ""
    keys: list[str] = []
    for event, value in events:
        seen()
        if event == "map_key":
            key = value
            continue
        if event in ("end_map", "end_array"):
            stack.pop()
            if not stack:
                return root
            key = keys.pop()
            continue
        item: Any = {} if event == "start_map" else [] if event == "start_array" else value
        top = stack[-1]
        if isinstance(top, dict):
            top[key] = item
        else:
            top.append(item)
        if event in ("start_map", "start_array"):
            if len(stack) >= max_depth:
                raise _TooDeep
            stack.append(item)
            keys.append(key)
    raise _TooDeep  # unreachable: ijson raises on a premature end


class _TooDeep(Exception):
    pass


def iter_json_array(path: Path, *, max_depth: int = MAX_JSON_DEPTH,
                    max_value_bytes: int = MAX_VALUE_BYTES) -> Iterator[tuple[int, Any]]:
    """(entry number from 1, value) for each element of the top-level JSON list, streamed."""
    with _open(path) as handle:
        reader = _CountingReader(path, handle, max_value_bytes)
        index = 0

        def seen() -> None:
            reader.since_event = 0

        def fail(problem: str) -> ImportFileError:
            where = f"entry {index}, near byte {reader.offset:,}" if index else f"near byte {reader.offset:,}"
            return ImportFileError(path, None, problem, position=where)

        events = ijson.basic_parse(reader, use_float=True, buf_size=JSON_CHUNK)
        try:
            first = next(events, None)
            if first is None or first[0] != "start_array":
                raise fail("expected a JSON list of streams (Spotify's Streaming_History_Audio_*.json)")
            for event, value in events:
                seen()
                if event == "end_array":
                    break
                index += 1
                yield index, _build(event, value, events, seen, max_depth)
            for _ in events:  # anything after the list is an error (ijson raises on trailing data)
                raise fail("unexpected data after the JSON list")
        except _TooDeep:
            raise fail(f"nested deeper than {max_depth} levels; not a streaming-history entry") from None
        except _ValueTooLong:
            raise fail(f"a single value is longer than {max_value_bytes:,} bytes; is this the right file?") from None
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise fail(_json_problem(exc)) from None


def field_text(path: Path, index: int, entry: dict[str, Any], name: str) -> str | None:
    """A text-or-null field of JSON entry `index`; any other type refuses the file (a Spotify export
    never has one, so the file is not what it claims to be)."""
    value = entry.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ImportFileError(path, None, f"{name!r} must be text or null, found {_kind(value)}",
                          position=f"entry {index}")
