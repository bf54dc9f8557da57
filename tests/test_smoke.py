def test_analyze_saddle_json(hess):
    res = hess("analyze", "saddle", "--at", "zeros", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["classification"] == "saddle_point"
    assert doc["eigenvalues"] == [-1.0, 1.0]
