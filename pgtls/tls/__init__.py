"""TLS for pgtls: ssl_* settings -> ssl.SSLContext, and what a connection's TLS says about the peer.

The generic face of the layer (PostgreSQL's be-secure.c split): callers use
only the names below and never configure :mod:`ssl` or OpenSSL themselves.
"""

from pgtls.tls.context import TlsConfig, build_tls_config, channel_binding_data
from pgtls.tls.errors import PeerCertError, TlsConfigError
from pgtls.tls.facts import ConnectionFacts, connection_facts
from pgtls.tls.handshake import ALPN_PROTOCOL, AcceptError, accept_error, verify_failure

__all__ = [
    "ALPN_PROTOCOL",
    "AcceptError",
    "ConnectionFacts",
    "PeerCertError",
    "TlsConfig",
    "TlsConfigError",
    "accept_error",
    "build_tls_config",
    "channel_binding_data",
    "connection_facts",
    "verify_failure",
]
