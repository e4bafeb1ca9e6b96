"""The private-key file rules of §19.9.1 (``check_ssl_key_file_permissions`` in be-secure-common.c).

The key file must be a regular file owned by the server's user or by root.
Owned by the server's user it may have no group or world permission at all
(0600 or less); owned by root it may additionally be group-readable (0640 or
less) so that an OS-managed key can be shared through a group.  When the
server itself runs as root the first rule applies, exactly as in PostgreSQL.
"""

from __future__ import annotations

import errno
import os
import stat

from pgtls.tls.errors import TlsConfigError

PERMISSIONS_DETAIL = (
    "File must have permissions u=rw (0600) or less if owned by the database user, "
    "or permissions u=rw,g=r (0640) or less if owned by root."
)

# errcode_for_file_access(): the SQLSTATE PostgreSQL derives from errno.
_FILE_ACCESS_SQLSTATE = {
    errno.ENOENT: "58P01",
    errno.ENOTDIR: "58P01",
    errno.EACCES: "42501",
    errno.EPERM: "42501",
    errno.ENAMETOOLONG: "42602",
}


def check_key_file_permissions(path: str | os.PathLike[str], shown: str, *, euid: int | None = None) -> None:
    """Raise :class:`TlsConfigError` unless ``path`` is an acceptable private key file.

    ``shown`` is the file name as configured (what PostgreSQL prints);
    ``euid`` is the server's effective uid (default: this process's).
    """
    me = os.geteuid() if euid is None else euid
    try:
        st = os.stat(path)
    except OSError as e:
        raise TlsConfigError(
            f'could not access private key file "{shown}": {os.strerror(e.errno or 0)}',
            sqlstate=_FILE_ACCESS_SQLSTATE.get(e.errno or 0, "58030"),
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise TlsConfigError(f'private key file "{shown}" is not a regular file')
    if st.st_uid != me and st.st_uid != 0:
        raise TlsConfigError(f'private key file "{shown}" must be owned by the database user or root')
    mode = st.st_mode
    if (st.st_uid == me and mode & (stat.S_IRWXG | stat.S_IRWXO)) or (
        st.st_uid == 0 and mode & (stat.S_IWGRP | stat.S_IXGRP | stat.S_IRWXO)
    ):
        raise TlsConfigError(
            f'private key file "{shown}" has group or world access', detail=PERMISSIONS_DETAIL
        )
