from server.venues import grid_venue
from tests.support import receive_json, unique_id


async def test_hold_flows_to_socket(server):
    event_id = await server.create_event(grid_venue(3, 10, event_id=unique_id()))
    _buyer, token = await server.buyer()
    async with server.socket(event_id) as ws:
        snapshot = await receive_json(ws)
        assert snapshot["type"] == "snapshot"
        assert snapshot["seats"]["A-1"] == "available"
        async with server.http(token) as client:
            response = await client.post(f"/api/events/{event_id}/holds", json={"seats": ["A-1", "A-2"]})
            assert response.status_code == 201, response.text
        diff = await receive_json(ws)
        assert diff["type"] == "diff"
        assert diff["changes"] == {"A-1": "held", "A-2": "held"}
