#!/usr/bin/env python3
"""A Python gRPC client of Faultline, built from proto/ with grpcio-tools.

Captures an error through CaptureService.Capture and reads it back through
GroupService.GetEvent, authenticating with the `authorization` metadata.

Usage: python_client.py ADDRESS KEY STUBS_DIR
  ADDRESS    host:port of the server (plaintext gRPC)
  KEY        an API key with the ingest and read scopes
  STUBS_DIR  where `python -m grpc_tools.protoc --python_out --grpc_python_out` wrote
             faultline/v1/*_pb2.py
"""

import sys
import uuid


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    address, key, stubs = sys.argv[1:]
    sys.path.insert(0, stubs)

    import grpc
    from faultline.v1 import capture_pb2, capture_pb2_grpc, common_pb2, groups_pb2, groups_pb2_grpc

    metadata = (("authorization", f"Bearer {key}"),)
    message = f"python client smoke test {uuid.uuid4()}"

    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        capture = capture_pb2_grpc.CaptureServiceStub(channel)
        groups = groups_pb2_grpc.GroupServiceStub(channel)

        captured = capture.Capture(
            capture_pb2.CaptureRequest(
                message=message,
                code="PY_SMOKE",
                level=common_pb2.LEVEL_WARNING,
                environment="ci",
                tags={"client": "python"},
            ),
            metadata=metadata,
            timeout=10,
        )
        print(f"Capture -> event_id={captured.event_id} group_id={captured.group_id} new_group={captured.new_group}")
        assert captured.event_id, "Capture returned no event_id"
        assert captured.group_id, "Capture returned no group_id"

        got = groups.GetEvent(groups_pb2.GetEventRequest(event_id=captured.event_id), metadata=metadata, timeout=10)
        event = got.event
        print(f"GetEvent -> id={event.id} message={event.message!r} level={common_pb2.Level.Name(event.level)}")
        assert event.id == captured.event_id, f"GetEvent returned event {event.id}, wanted {captured.event_id}"
        assert event.group_id == captured.group_id, f"event is in group {event.group_id}, wanted {captured.group_id}"
        assert event.message == message, f"GetEvent message is {event.message!r}, wanted {message!r}"
        assert event.level == common_pb2.LEVEL_WARNING, f"level is {event.level}"
        assert event.tags.get("client") == "python", f"tags are {dict(event.tags)}"

        # Without the key the server must refuse.
        try:
            groups.GetEvent(groups_pb2.GetEventRequest(event_id=captured.event_id), timeout=10)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, f"without a key: {e.code()}, wanted UNAUTHENTICATED"
            print(f"GetEvent without a key -> {e.code().name} ({e.details()})")
        else:
            raise AssertionError("GetEvent without a key succeeded")

    print("python client: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
