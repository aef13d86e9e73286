import httpx


async def test_liveness_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/public/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/public/health/ready")

    assert response.status_code == 200
    assert response.json()["checks"]["database"]["status"] == "ok"


async def test_metrics_are_exposed(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/public/health")

    response = await client.get("/api/v1/public/metrics")

    assert response.status_code == 200
    assert 'route="/api/v1/public/health"' in response.text
