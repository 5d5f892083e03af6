"""The KRaft cluster id of a new local broker is one the storage tool accepts."""

import uuid

from streams import localkafka


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    # 0xF8 encodes to "-" in URL-safe base64: the storage tool would read such an id as an
    # option and refuse to format the broker's storage.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" * 16)])
    monkeypatch.setattr(localkafka.uuid, "uuid4", lambda: next(draws))
    cluster_id = localkafka._kraft_cluster_id()
    assert cluster_id == "EBAQEBAQEBAQEBAQEBAQEA"
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")
