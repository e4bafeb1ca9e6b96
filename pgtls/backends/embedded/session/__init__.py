"""One client session: its context, output, the simple and extended query protocols, statement dispatch, COPY and cursors (layer 9)."""
