async def test_two_peers_share_a_cell(make_notebook, connect):
    make_notebook("nb.ipynb", ["abcd"])
    a = await connect("nb.ipynb")
    b = await connect("nb.ipynb")
    assert a.source("cell-0") == "abcd"
    a.insert_text("cell-0", 4, "e")
    await b.wait_for(lambda r: r.source("cell-0") == "abcde")
