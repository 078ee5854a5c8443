"""Edit `mcp_servers.yaml` in place: add, replace or remove one entry, keep everything else.

ruamel.yaml parses the file and tells where each entry starts (line, column); the edit splices
text at those lines, so comments, key order, quoting and blank lines of every other entry stay
byte-for-byte the same (a full round-trip dump would move trailing comments between entries).
The new text is re-parsed and validated as a whole before the file is replaced atomically.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from mcpgw.client.errors import UsageError

Validator = Callable[[dict[str, Any]], list[str]]


def _rt() -> YAML:
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap long values
    return rt


def load_text(path: Path) -> str:
    """The file's text, or "" when it does not exist yet."""
    try:
        with path.open(newline="") as fh:  # keep "\r\n" line ends as they are
            return fh.read()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _parse(text: str, path: Path) -> Any:
    try:
        return _rt().load(text) if text.strip() else None
    except YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML, refusing to edit it: {exc}") from None


def _servers(doc: Any, path: Path) -> Any:
    if doc is None:
        return None
    if not isinstance(doc, CommentedMap):
        raise UsageError(f"{path}: expected a mapping with a `servers:` key at top level")
    servers = doc.get("servers")
    if servers is not None and not isinstance(servers, CommentedMap):
        raise UsageError(f"{path}: `servers` must be a mapping of name -> settings")
    return servers


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_blank(line: str) -> bool:
    return not line.strip()


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _entry_end(lines: list[str], key_line: int, col: int) -> int:
    """Index after the last line that belongs to the entry starting at key_line (its body)."""
    end = key_line + 1
    for i in range(key_line + 1, len(lines)):
        line = lines[i]
        if _is_blank(line):
            continue
        if _indent(line) <= col:
            break
        end = i + 1
    return end


def _leading_comments(lines: list[str], key_line: int, col: int) -> int:
    """First line of the comment block directly above an entry (same indent, no blank line)."""
    start = key_line
    while start > 0 and _is_comment(lines[start - 1]) and _indent(lines[start - 1]) == col:
        start -= 1
    return start


def _block_layout(servers: Any, lines: list[str]) -> tuple[int, int] | None:
    """(entry column, nesting step) when entries are block-style and spliceable, else None."""
    if not servers:
        return None
    cols = set()
    step = 2
    for name in servers:
        line, col = servers.lc.key(name)
        if not lines[line][col:].startswith(str(name)) or _indent(lines[line]) != col:
            return None
        cols.add(col)
        body = servers[name]
        if isinstance(body, CommentedMap) and body:
            child_line, child_col = body.lc.key(next(iter(body)))
            if child_line > line:
                step = child_col - col
    if len(cols) != 1:
        return None
    return cols.pop(), max(step, 1)


def render_entry(name: str, entry: dict[str, Any], col: int, step: int) -> str:
    """YAML text for one `name: {...}` entry at column `col`, tags as a flow list."""
    body = _node(entry)
    rt = _rt()
    rt.indent(mapping=step, sequence=step + 2, offset=step)
    out = io.StringIO()
    rt.dump(CommentedMap([(name, body)]), out)
    return "".join(" " * col + line + "\n" for line in out.getvalue().splitlines())


def _node(entry: dict[str, Any]) -> CommentedMap:
    """Round-trip nodes for a plain entry: nested mappings in block style, lists in flow style."""
    body = CommentedMap()
    for key, value in entry.items():
        if isinstance(value, dict):
            value = _node(value)
        elif isinstance(value, list):
            seq = CommentedSeq(value)
            seq.fa.set_flow_style()
            value = seq
        body[key] = value
    return body


def _fresh(doc: Any, name: str, entry: dict[str, Any]) -> str:
    """Whole-document dump for a new file or one whose `servers` is empty."""
    if doc is None:
        doc = CommentedMap()
    doc["servers"] = CommentedMap()
    doc["servers"][name] = _node(entry)
    rt = _rt()
    rt.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    rt.dump(doc, out)
    return out.getvalue()


def add_entry(text: str, name: str, entry: dict[str, Any], *, replace: bool = False, path: Path = Path("mcp_servers.yaml")) -> str:
    """New file text with `name` added at the end of `servers` (or replaced where it stands)."""
    doc = _parse(text, path)
    servers = _servers(doc, path)
    if servers is not None and name in servers and not replace:
        raise UsageError(f"server {name!r} is already registered in {path}; use --replace to overwrite it")
    lines = text.splitlines(keepends=True)
    layout = _block_layout(servers, [ln.rstrip("\n") for ln in lines])
    eol = _eol(text)
    if layout is None:
        if servers:
            raise UsageError(f"{path}: `servers` is not in block style; edit this file by hand")
        return _fresh(doc, name, entry).replace("\n", eol)
    col, step = layout
    block = render_entry(name, entry, col, step).replace("\n", eol)
    plain = [ln.rstrip("\n") for ln in lines]
    if name in servers:
        key_line = servers.lc.key(name)[0]
        start, end = key_line, _entry_end(plain, key_line, col)
    else:
        last = list(servers)[-1]
        start = end = _entry_end(plain, servers.lc.key(last)[0], col)
    head = "".join(lines[:start])
    if head and not head.endswith("\n"):
        head += eol
    return head + block + "".join(lines[end:])


def remove_entry(text: str, name: str, *, path: Path = Path("mcp_servers.yaml")) -> str:
    """New file text without `name` (and the comment lines directly above it)."""
    doc = _parse(text, path)
    servers = _servers(doc, path)
    if not servers or name not in servers:
        raise UsageError(f"server {name!r} is not registered in {path}")
    plain = text.splitlines()
    lines = text.splitlines(keepends=True)
    layout = _block_layout(servers, plain)
    if layout is None:
        raise UsageError(f"{path}: `servers` is not in block style; edit this file by hand")
    col, _ = layout
    names = list(servers)
    key_line = servers.lc.key(name)[0]
    start = _leading_comments(plain, key_line, col)
    index = names.index(name)
    if index + 1 < len(names):
        next_line = servers.lc.key(names[index + 1])[0]
        end = _leading_comments(plain, next_line, col)
    else:
        end = _entry_end(plain, key_line, col)
    kept = lines[:start] + lines[end:]
    if len(names) == 1:
        # `servers:` with nothing under it would load as null; keep it an (empty) mapping.
        at = doc.lc.key("servers")[0]
        kept[at] = kept[at].replace("servers:", "servers: {}", 1)
    return "".join(kept)


def _eol(text: str) -> str:
    """The file's line ending, so an entry added to a CRLF file does not mix endings."""
    return "\r\n" if "\r\n" in text else "\n"


def check(old_text: str, new_text: str, name: str, validate: Validator, path: Path) -> None:
    """Refuse the edit unless the new text parses, validates, and leaves other entries equal."""
    try:
        new = yaml.safe_load(new_text) or {}
        old = yaml.safe_load(old_text) or {} if old_text.strip() else {}
    except yaml.YAMLError as exc:
        raise UsageError(f"refusing to write {path}: the edit would not be valid YAML ({exc})") from None
    errors = validate(new)
    if errors:
        raise UsageError(f"refusing to write {path}:\n  " + "\n  ".join(errors))
    old_rest = {k: v for k, v in (old.get("servers") or {}).items() if k != name}
    new_rest = {k: v for k, v in (new.get("servers") or {}).items() if k != name}
    other_old = {k: v for k, v in old.items() if k != "servers"}
    other_new = {k: v for k, v in new.items() if k != "servers"}
    if old_rest != new_rest or other_old != other_new:
        raise UsageError(f"refusing to write {path}: the edit would change other entries")


def write_atomic(path: Path, text: str) -> None:
    """Write to a temp file in the same directory, fsync, then rename over the target."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def names(text: str) -> list[str]:
    """Server names in the file's text (empty when there is none)."""
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return []
    servers = data.get("servers") if isinstance(data, dict) else None
    return list(servers) if isinstance(servers, dict) else []
