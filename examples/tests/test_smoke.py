from pace import work


def test_import():
    import shop.orders  # noqa: F401


def test_quick_math():
    assert 2 + 2 == 4


def test_slow_integration(warehouse):
    work(1.0)
    assert warehouse["region"] == "eu"
