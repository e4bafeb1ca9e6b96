"""Private-key passphrases: ssl_passphrase_command, the reload guard and the terminal prompt.

Follows ``run_ssl_passphrase_command`` (be-secure-common.c) and the password
callbacks of be-secure-openssl.c:

* ssl_passphrase_command is run through the shell with ``%p`` replaced by
  OpenSSL's prompt ``Enter PEM pass phrase:`` and ``%%`` by ``%``; the first
  line of its output, trailing CR/LF removed, is the passphrase.  A non-zero
  exit is ``command "..." failed`` with the wait status as DETAIL.
* at reload without ``ssl_passphrase_command_supports_reload`` (or without a
  command) a dummy callback answers with an empty passphrase and remembers
  that it was asked, so the key-load error can say the key "cannot be
  reloaded because it requires a passphrase".
* at start without a command the operator is prompted on the terminal
  (``interactive``); a server without a terminal gets no passphrase.

The passphrase is copied straight into OpenSSL's buffer; it is never logged,
returned, or put into an error.
"""

from __future__ import annotations

import ctypes
import enum
import getpass
import os
import signal
import subprocess

from pgtls.tls import ffi
from pgtls.tls.errors import TlsConfigError

PROMPT = "Enter PEM pass phrase:"
PARAM = "ssl_passphrase_command"


class Mode(enum.Enum):
    COMMAND = "command"  # run ssl_passphrase_command
    DUMMY = "dummy"  # reload without a reloadable command: empty passphrase, remember the call
    PROMPT = "prompt"  # server start, no command, a terminal: ask the operator
    NONE = "none"  # server start, no command, no terminal: no passphrase available


def choose_mode(command: str, supports_reload: bool, *, is_start: bool, interactive: bool) -> Mode:
    if is_start:
        if command:
            return Mode.COMMAND
        return Mode.PROMPT if interactive else Mode.NONE
    return Mode.COMMAND if command and supports_reload else Mode.DUMMY


def expand_command(command: str, prompt: str = PROMPT) -> str:
    """``replace_percent_placeholders(command, "ssl_passphrase_command", "p", prompt)``."""
    out: list[str] = []
    i = 0
    while i < len(command):
        ch = command[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        nxt = command[i + 1] if i + 1 < len(command) else ""
        if nxt == "%":
            out.append("%")
        elif nxt == "p":
            out.append(prompt)
        elif nxt == "":
            raise TlsConfigError(
                f'invalid value for parameter "{PARAM}": "{command}"',
                detail='String ends unexpectedly after escape character "%".',
                sqlstate="22023",
            )
        else:
            raise TlsConfigError(
                f'invalid value for parameter "{PARAM}": "{command}"',
                detail=f'String contains unexpected placeholder "%{nxt}".',
                sqlstate="22023",
            )
        i += 2
    return "".join(out)


def wait_result_to_str(returncode: int) -> str:
    """PostgreSQL's ``wait_result_to_str`` for a :mod:`subprocess` return code."""
    if returncode < 0:
        sig = -returncode
        name = signal.strsignal(sig) or f"unrecognized signal {sig}"
        return f"child process was terminated by signal {sig}: {name}"
    if returncode == 126:
        return "command not executable"
    if returncode == 127:
        return "command not found"
    return f"child process exited with exit code {returncode}"


def run_command(command: str, size: int) -> bytes:
    """Run ssl_passphrase_command; return at most ``size - 1`` bytes of its first line without CR/LF."""
    expanded = expand_command(command)
    try:
        proc = subprocess.Popen(expanded, shell=True, stdout=subprocess.PIPE)  # noqa: S602 (the operator's command)
    except OSError as e:
        raise TlsConfigError(
            f'could not execute command "{expanded}": {os.strerror(e.errno or 0)}', sqlstate="58030"
        ) from None
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline(max(size - 1, 0))
    finally:
        proc.stdout.close()
    rc = proc.wait()
    if rc != 0:
        raise TlsConfigError(f'command "{expanded}" failed', detail=wait_result_to_str(rc), sqlstate="58030")
    return line.rstrip(b"\r\n")


class PasswordCallback:
    """A ``pem_password_cb`` for ``SSL_CTX_set_default_passwd_cb`` in one of the :class:`Mode` s.

    Exceptions cannot cross OpenSSL, so failures are kept in :attr:`error` and
    the callback reports "no passphrase" to OpenSSL.
    """

    def __init__(self, mode: Mode, command: str = "") -> None:
        self.mode = mode
        self.command = command
        self.called = False
        self.error: TlsConfigError | None = None
        self.cfunc = ffi.PASSWD_CB(self._callback)

    def reset(self) -> None:
        self.called = False
        self.error = None

    def _obtain(self, size: int) -> bytes | None:
        if self.mode is Mode.COMMAND:
            return run_command(self.command, size)
        if self.mode is Mode.PROMPT:
            return getpass.getpass(PROMPT).encode()
        if self.mode is Mode.DUMMY:
            return b""
        return None

    def _callback(self, buf: int, size: int, rwflag: int, userdata: int) -> int:
        self.called = True
        try:
            secret = self._obtain(size)
        except TlsConfigError as e:
            self.error = self.error or e
            secret = b""
        except BaseException:  # never let an exception unwind through OpenSSL
            secret = None
        if size <= 0:
            return -1
        if secret is None:
            ctypes.memset(buf, 0, 1)
            return -1
        secret = secret[: size - 1]
        ctypes.memmove(buf, secret, len(secret))
        ctypes.memset(buf + len(secret), 0, 1)
        return len(secret)
