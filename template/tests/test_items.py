import httpx


async def test_an_item_is_stored_and_read_back(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/items", json={"name": "kettle"})
    read = await client.get(f"/api/v1/items/{created.json()['id']}")

    assert created.status_code == 201
    assert read.json()["name"] == "kettle"


async def test_a_missing_item_is_a_problem_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/items/999999")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_invalid_item_is_a_problem_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/items", json={"name": ""})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "name"]
